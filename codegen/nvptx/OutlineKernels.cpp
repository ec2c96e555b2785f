//===- OutlineKernels.cpp - Device work of host functions as kernels ------===//
//
// See `loom-gpu-outline-kernels` in Passes.td: each parallel loop nest, copy
// or run of serial memory work at the top level of a host function becomes
// a kernel of `gpu.module @loom_kernels` and a `gpu.launch_func`, so that
// the host function is a straight-line launch sequence over buffers.
//
//===----------------------------------------------------------------------===//

#include "codegen/nvptx/Bf16Mma.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "codegen/nvptx/Passes.h"
#include "codegen/nvptx/Tf32Mma.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "loom-gpu-outline-kernels"

namespace loom::nvptx {
#define GEN_PASS_DEF_LOOMGPUOUTLINEKERNELS
#include "codegen/nvptx/Passes.h.inc"
} // namespace loom::nvptx

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kKernelModule = "loom_kernels";
/// On each launch: which of its arguments the kernel may write.
constexpr llvm::StringLiteral kWritesAttr = "loom.writes";
/// On each launch: elements from each argument's buffer start to the first
/// element the kernel sees (offsets taken out of the kernel's types).
constexpr llvm::StringLiteral kArgOffsetsAttr = "loom.arg_offsets";

/// Ops that stay in the host function: buffers, views of them, constants.
bool staysOnHost(Operation *op) {
  // (A top-level load is not run on the host: it is cloned into the kernels
  // that use its value, see `Outliner::outline`.)
  return llvm::isa<memref::LoadOp, memref::AllocOp, memref::DeallocOp,
                   memref::SubViewOp, memref::ExpandShapeOp,
                   memref::CollapseShapeOp, memref::ReinterpretCastOp,
                   memref::CastOp, memref::GetGlobalOp, func::ReturnOp>(op) ||
         op->hasTrait<OpTrait::ConstantLike>() ||
         // Index arithmetic (an unrolled loop's offsets): cloned into the
         // kernels that use it, then dead on the host.
         (isPure(op) && op->getNumRegions() == 0);
}

/// True when `user` may write through its operand `buffer` (not through
/// views of it).
bool mayWriteOperand(Operation *user, Value buffer) {
  auto effects = llvm::dyn_cast<MemoryEffectOpInterface>(user);
  if (!effects)
    return !user->hasTrait<OpTrait::HasRecursiveMemoryEffects>();
  SmallVector<MemoryEffects::EffectInstance> list;
  effects.getEffectsOnValue(buffer, list);
  return llvm::any_of(list, [](const MemoryEffects::EffectInstance &e) {
    return llvm::isa<MemoryEffects::Write>(e.getEffect());
  });
}

/// True when the kernel may write through `buffer` (a view of it included).
bool mayWrite(Value buffer) {
  for (OpOperand &use : buffer.getUses()) {
    Operation *user = use.getOwner();
    if (auto view = llvm::dyn_cast<ViewLikeOpInterface>(user)) {
      if (view.getViewSource() == buffer &&
          llvm::any_of(user->getResults(), mayWrite))
        return true;
      continue;
    }
    if (mayWriteOperand(user, buffer))
      return true;
  }
  return false;
}

/// The buffer a memref value views.
Value rootOf(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
    v = view.getViewSource();
  return v;
}

/// The first op strictly between `from` and `to` (same block) that may write
/// the buffer `buffer` views, or null.
Operation *writtenBetween(Value buffer, Operation *from, Operation *to) {
  Value root = rootOf(buffer);
  for (Operation *op = from->getNextNode(); op && op != to;
       op = op->getNextNode()) {
    if (auto launch = llvm::dyn_cast<gpu::LaunchFuncOp>(op)) {
      auto writes = launch->getAttrOfType<DenseBoolArrayAttr>(kWritesAttr);
      for (auto [i, operand] : llvm::enumerate(launch.getKernelOperands()))
        if (rootOf(operand) == root &&
            (!writes || int64_t(i) >= writes.size() || writes[i]))
          return op;
      continue;
    }
    bool writes = false;
    op->walk([&](Operation *nested) {
      for (Value operand : nested->getOperands())
        if (llvm::isa<MemRefType>(operand.getType()) &&
            rootOf(operand) == root && mayWriteOperand(nested, operand))
          writes = true;
    });
    if (writes)
      return op;
  }
  return nullptr;
}

/// What the kernel body computes from the linear thread index (null for a
/// serial kernel), with `map` holding the kernel's view of captured values.
using BodyBuilder =
    llvm::function_ref<LogicalResult(OpBuilder &, IRMapping &, Value linear)>;

class Outliner {
public:
  Outliner(ModuleOp module, int64_t blockSize)
      : module(module), blockSize(blockSize) {}

  /// Replaces `ops` (consecutive, top level of `host`) with a launch of a
  /// new kernel over `points` threads (nullopt: one thread, serial; 0: no
  /// work, the ops are just erased) whose body
  /// `build` makes; `block` threads per block (default: the pass's).
  LogicalResult outline(func::FuncOp host, ArrayRef<Operation *> ops,
                        StringRef what, std::optional<int64_t> points,
                        BodyBuilder build,
                        std::optional<int64_t> block = std::nullopt);

private:
  gpu::GPUModuleOp kernels();
  /// Copies the memref.global that `use` reads into the kernel module.
  LogicalResult copyGlobal(memref::GetGlobalOp use);
  /// Values `ops` use that are defined outside them, in first-use order.
  llvm::SetVector<Value> captured(ArrayRef<Operation *> ops);

  ModuleOp module;
  int64_t blockSize;
  gpu::GPUModuleOp kernelModule;
  llvm::DenseMap<Operation *, int> counters;
  /// Kernels by their code (printed with a placeholder name).
  llvm::StringMap<gpu::GPUFuncOp> seen;
};

LogicalResult Outliner::copyGlobal(memref::GetGlobalOp use) {
  gpu::GPUModuleOp gpuModule = kernels();
  if (gpuModule.lookupSymbol(use.getName()))
    return success();
  auto global = module.lookupSymbol<memref::GlobalOp>(use.getName());
  if (!global)
    return use.emitOpError("reads a global that the module does not define");
  OpBuilder b = OpBuilder::atBlockBegin(gpuModule.getBody());
  b.clone(*global);
  return success();
}

gpu::GPUModuleOp Outliner::kernels() {
  if (kernelModule)
    return kernelModule;
  if (auto existing = module.lookupSymbol<gpu::GPUModuleOp>(kKernelModule))
    return kernelModule = existing;
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  kernelModule = gpu::GPUModuleOp::create(b, module.getLoc(), kKernelModule);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());
  return kernelModule;
}

llvm::SetVector<Value> Outliner::captured(ArrayRef<Operation *> ops) {
  // Inside: defined by an op of the group or in one (a block argument
  // belongs to its block's parent op, e.g. a loop's induction variables).
  auto inside = [&](Value v) {
    Operation *def = v.getDefiningOp();
    if (!def)
      def = llvm::cast<BlockArgument>(v).getOwner()->getParentOp();
    return llvm::any_of(ops,
                        [&](Operation *op) { return op->isAncestor(def); });
  };
  llvm::SetVector<Value> values;
  for (Operation *op : ops)
    op->walk([&](Operation *nested) {
      for (Value operand : nested->getOperands())
        if (!inside(operand))
          values.insert(operand);
    });
  return values;
}

LogicalResult Outliner::outline(func::FuncOp host, ArrayRef<Operation *> ops,
                                StringRef what, std::optional<int64_t> points,
                                BodyBuilder build,
                                std::optional<int64_t> block) {
  if (points == 0) {
    for (Operation *op : llvm::reverse(ops))
      op->erase();
    return success();
  }
  Location loc = ops.front()->getLoc();
  for (Operation *op : ops) {
    WalkResult walk = op->walk([&](memref::AllocOp alloc) {
      alloc.emitOpError("allocates inside device work; a kernel cannot "
                        "(expected every buffer at the top level)");
      return WalkResult::interrupt();
    });
    if (walk.wasInterrupted())
      return failure();
  }
  llvm::SetVector<Value> values = captured(ops);
  // Buffers become arguments; constants (and pure arithmetic on them) are
  // cloned into the kernel; anything else computed on the host cannot be.
  SmallVector<Value> args;
  SmallVector<Operation *> cloned;
  std::function<LogicalResult(Value)> classify = [&](Value v) -> LogicalResult {
    Operation *def = v.getDefiningOp();
    if (llvm::isa<MemRefType>(v.getType())) {
      // A constant array (memref.global): the kernel reads its own copy.
      if (auto global = rootOf(v).getDefiningOp<memref::GetGlobalOp>()) {
        if (failed(copyGlobal(global)))
          return failure();
        for (Value operand : def->getOperands())
          if (failed(classify(operand)))
            return failure();
        if (!llvm::is_contained(cloned, def))
          cloned.push_back(def);
        return success();
      }
      if (!llvm::is_contained(args, v))
        args.push_back(v);
      return success();
    }
    if (auto load = llvm::dyn_cast_or_null<memref::LoadOp>(def)) {
      // A scalar read on the host (a hyperparameter, a global norm): the
      // kernel reads it itself, which is the same value as long as nothing
      // in between writes the buffer.
      if (Operation *writer =
              writtenBetween(load.getMemRef(), load, ops.front()))
        return writer
                   ->emitOpError(
                       "writes a buffer whose value a later kernel reads as it "
                       "was before; the GPU pipeline cannot keep both")
                   .attachNote(load.getLoc())
               << "read here";
      for (Value operand : def->getOperands())
        if (failed(classify(operand)))
          return failure();
      if (!llvm::is_contained(cloned, def))
        cloned.push_back(def);
      return success();
    }
    if (def && isPure(def) && def->getNumRegions() == 0) {
      for (Value operand : def->getOperands())
        if (failed(classify(operand)))
          return failure();
      if (!llvm::is_contained(cloned, def))
        cloned.push_back(def);
      return success();
    }
    return emitError(v.getLoc())
           << "a kernel needs this value, computed on the host (expected a "
              "constant or a buffer)";
  };
  for (Value v : values)
    if (failed(classify(v)))
      return failure();

  // A buffer that the kernel only loads from and stores to is passed as the
  // address of its first element: its static offset leaves the kernel's
  // type, so the same code over another slice (the next layer's weights)
  // is the same kernel.
  auto loadsAndStoresOnly = [&](Value v) {
    return llvm::all_of(v.getUsers(), [&](Operation *user) {
      bool used = llvm::is_contained(cloned, user) ||
                  llvm::any_of(
                      ops, [&](Operation *op) { return op->isAncestor(user); });
      // (A copy's and a contraction's kernel bodies are loads and stores.)
      return !used || llvm::isa<memref::LoadOp, memref::StoreOp, memref::CopyOp,
                                linalg::LinalgOp>(user);
    });
  };
  SmallVector<Type> argTypes;
  SmallVector<int64_t> argOffsets;
  for (Value v : args) {
    auto type = llvm::cast<MemRefType>(v.getType());
    SmallVector<int64_t> strides;
    int64_t offset = 0;
    if (type.hasStaticShape() &&
        succeeded(type.getStridesAndOffset(strides, offset)) &&
        !ShapedType::isDynamic(offset) &&
        llvm::none_of(strides, ShapedType::isDynamic) &&
        loadsAndStoresOnly(v)) {
      MemRefType folded =
          MemRefType::get(type.getShape(), type.getElementType(),
                          StridedLayoutAttr::get(type.getContext(), 0, strides),
                          type.getMemorySpace());
      // Row-major strides: the identity layout, one spelling per shape.
      auto identity =
          MemRefType::get(type.getShape(), type.getElementType(),
                          MemRefLayoutAttrInterface(), type.getMemorySpace());
      if (identity.getStridesAndOffset() ==
          std::make_pair(SmallVector<int64_t>(strides), int64_t(0)))
        folded = identity;
      argTypes.push_back(folded);
      argOffsets.push_back(offset);
    } else {
      argTypes.push_back(type);
      argOffsets.push_back(0);
    }
  }

  // The kernel.
  gpu::GPUModuleOp gpuModule = kernels();
  int n = counters[host]++;
  std::string name =
      (host.getSymName() + "_" + std::to_string(n) + "_" + what).str();
  OpBuilder mb = OpBuilder::atBlockEnd(gpuModule.getBody());
  auto kernel =
      gpu::GPUFuncOp::create(mb, loc, name, mb.getFunctionType(argTypes, {}));
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), mb.getUnitAttr());
  int64_t threads = points ? std::min(*points, block.value_or(blockSize)) : 1;
  int64_t blocks = points ? (*points + threads - 1) / threads : 1;
  kernel.setKnownBlockSizeAttr(
      mb.getDenseI32ArrayAttr({int32_t(threads), 1, 1}));

  Block &entry = kernel.getBody().front();
  OpBuilder kb = OpBuilder::atBlockBegin(&entry);
  IRMapping map;
  for (auto [value, arg] : llvm::zip(args, entry.getArguments()))
    map.map(value, arg);
  // Cloned in dominance order (operands before users).
  llvm::sort(cloned,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  for (Operation *op : cloned)
    kb.clone(*op, map);
  Value linear;
  auto ret = gpu::ReturnOp::create(kb, loc);
  kb.setInsertionPoint(ret);
  if (points) {
    Value bid = gpu::BlockIdOp::create(kb, loc, gpu::Dimension::x);
    Value tid = gpu::ThreadIdOp::create(kb, loc, gpu::Dimension::x);
    Value width = arith::ConstantIndexOp::create(kb, loc, threads);
    linear = arith::AddIOp::create(
        kb, loc, arith::MulIOp::create(kb, loc, bid, width), tid);
    if (*points % threads != 0) {
      Value bound = arith::ConstantIndexOp::create(kb, loc, *points);
      Value inBounds = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::ult,
                                             linear, bound);
      auto guard = scf::IfOp::create(kb, loc, inBounds, /*withElse=*/false);
      kb.setInsertionPoint(guard.thenBlock()->getTerminator());
    }
  }
  if (failed(build(kb, map, linear)))
    return failure();

  // Which arguments the kernel writes: what the host copies back. (The
  // entry block's arguments after them are its shared memory.)
  SmallVector<bool> writes;
  for (BlockArgument arg : entry.getArguments().take_front(argTypes.size()))
    writes.push_back(mayWrite(arg));

  // The same code was outlined before (another layer): launch that kernel.
  std::string text;
  {
    llvm::raw_string_ostream os(text);
    kernel.setName("k");
    kernel->print(os, OpPrintingFlags().printGenericOpForm());
    kernel.setName(name);
  }
  auto [known, inserted] = seen.try_emplace(text, kernel);
  if (!inserted) {
    kernel.erase();
    kernel = known->second;
    --counters[host];
  }

  // The launch replaces the ops; an argument whose offset moved into the
  // address is passed as a view of its buffer's start, the offset in
  // `loom.arg_offsets` (elements) for the launch plan.
  OpBuilder hb(ops.front());
  auto c = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(hb, loc, v);
  };
  Value one = c(1);
  SmallVector<Value> operands;
  for (auto [v, type] : llvm::zip(args, argTypes)) {
    if (v.getType() == type) {
      operands.push_back(v);
      continue;
    }
    auto memref = llvm::cast<MemRefType>(type);
    auto [strides, offset] = memref.getStridesAndOffset();
    operands.push_back(memref::ReinterpretCastOp::create(
        hb, loc, memref, v, /*offset=*/0, memref.getShape(), strides));
  }
  auto launch =
      gpu::LaunchFuncOp::create(hb, loc, kernel, {c(blocks), one, one},
                                {c(threads), one, one}, Value(), operands);
  launch->setAttr(kWritesAttr, hb.getDenseBoolArrayAttr(writes));
  launch->setAttr(kArgOffsetsAttr, hb.getDenseI64ArrayAttr(argOffsets));
  for (Operation *op : llvm::reverse(ops))
    op->erase();
  return success();
}

/// A shared-memory buffer of the kernel (a workgroup attribution), aligned
/// for 16-byte vector accesses (LLVM's NVPTX backend merges neighbouring
/// loads into ld.shared.v4, which needs the alignment the buffer states).
Value addSharedBuffer(gpu::GPUFuncOp kernel, MemRefType type, Location loc) {
  Value buffer = kernel.addWorkgroupAttribution(type, loc);
  kernel.setWorkgroupAttributionAttr(
      kernel.getNumWorkgroupAttributions() - 1, "llvm.align",
      IntegerAttr::get(IntegerType::get(kernel.getContext(), 64), 16));
  return buffer;
}

/// Constant bounds of a loop dimension, or failure.
struct Range {
  int64_t lb, ub, step, trips;
};

FailureOr<SmallVector<Range>> staticRanges(scf::ParallelOp loop) {
  SmallVector<Range> ranges;
  for (auto [lb, ub, step] :
       llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
    APInt l, u, s;
    if (!matchPattern(lb, m_ConstantInt(&l)) ||
        !matchPattern(ub, m_ConstantInt(&u)) ||
        !matchPattern(step, m_ConstantInt(&s)) || s.getSExtValue() <= 0)
      return loop.emitOpError("has dynamic bounds or steps; the GPU "
                              "pipeline expects static shapes (bind every "
                              "dim)");
    Range r{l.getSExtValue(), u.getSExtValue(), s.getSExtValue(), 0};
    r.trips = r.ub > r.lb ? (r.ub - r.lb + r.step - 1) / r.step : 0;
    ranges.push_back(r);
  }
  return ranges;
}

/// The induction values of the point `linear` of `ranges`, the last
/// dimension fastest.
SmallVector<Value> delinearize(OpBuilder &b, Location loc, Value linear,
                               ArrayRef<Range> ranges) {
  SmallVector<Value> ivs(ranges.size());
  Value rest = linear;
  for (int64_t d = int64_t(ranges.size()) - 1; d >= 0; --d) {
    Value trips = arith::ConstantIndexOp::create(b, loc, ranges[d].trips);
    Value index = d == 0 ? rest : arith::RemUIOp::create(b, loc, rest, trips);
    if (d > 0)
      rest = arith::DivUIOp::create(b, loc, rest, trips);
    Value iv = index;
    if (ranges[d].step != 1)
      iv = arith::MulIOp::create(
          b, loc, iv, arith::ConstantIndexOp::create(b, loc, ranges[d].step));
    if (ranges[d].lb != 0)
      iv = arith::AddIOp::create(
          b, loc, iv, arith::ConstantIndexOp::create(b, loc, ranges[d].lb));
    ivs[d] = iv;
  }
  return ivs;
}

/// A contraction C[b](m, n) += A[b](m, k) * B[b](k, n) on f32 buffers of
/// static shape: its loop positions and sizes.
struct Contraction {
  int64_t batch = -1, m = 0, n = 0, k = 0;
  SmallVector<int64_t> sizes;
};

std::optional<Contraction> matchContraction(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  for (OpOperand &operand : op->getOpOperands()) {
    auto type = llvm::dyn_cast<MemRefType>(operand.get().getType());
    if (!type || !type.getElementType().isF32() || !type.hasStaticShape() ||
        !op.getMatchingIndexingMap(&operand).isProjectedPermutation())
      return std::nullopt;
  }
  auto dims = linalg::inferContractionDims(op);
  if (failed(dims) || dims->batch.size() > 1 || dims->m.size() != 1 ||
      dims->n.size() != 1 || dims->k.size() != 1)
    return std::nullopt;
  Contraction c;
  c.batch = dims->batch.empty() ? -1 : int64_t(dims->batch.front());
  c.m = dims->m.front();
  c.n = dims->n.front();
  c.k = dims->k.front();
  c.sizes = op.getStaticLoopRanges();
  if (llvm::any_of(c.sizes, ShapedType::isDynamic) ||
      int64_t(c.sizes.size()) != 3 + (c.batch >= 0))
    return std::nullopt;
  return c;
}

/// A reduction over its last loop, out(p) = combine(out(p), f(ins(p, r))),
/// r the inputs' innermost index, with one combining op (sum, max, min,
/// product) that has a neutral element, on 32-bit values of static shape, the
/// reduced loop long enough for a warp: what a warp per output computes (see
/// outlineRowReduction).
struct RowReduction {
  SmallVector<int64_t> sizes; // loop ranges, the reduced one last
  Operation *combiner;        // in the region: combine(out arg, x)
  TypedAttr neutral;
};

/// Shortest reduced loop that a warp takes (below, a thread per output).
constexpr int64_t kMinWarpReduction = 64;
constexpr int64_t kWarp = 32;
/// Fewer rows than this, each at least kLongRow long, take a block of
/// kRowBlock threads per row.
constexpr int64_t kFewRows = 1024, kLongRow = 4096, kRowBlock = 256;

std::optional<RowReduction> matchRowReduction(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInits() != 1 ||
      op.getNumReductionLoops() != 1 || op->getNumRegions() != 1)
    return std::nullopt;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  if (iterators.back() != utils::IteratorType::reduction)
    return std::nullopt;
  RowReduction r;
  r.sizes = op.getStaticLoopRanges();
  if (llvm::any_of(r.sizes, ShapedType::isDynamic) ||
      r.sizes.back() < kMinWarpReduction)
    return std::nullopt;
  // Lanes read neighbouring elements: the reduced loop indexes the last
  // dim of each input that it indexes (a sum over rows keeps a thread per
  // column, whose neighbours read neighbouring columns).
  unsigned reduced = unsigned(r.sizes.size() - 1);
  for (OpOperand &operand : op->getOpOperands()) {
    auto type = llvm::dyn_cast<MemRefType>(operand.get().getType());
    AffineMap map = op.getMatchingIndexingMap(&operand);
    if (!type || !type.hasStaticShape() || !map.isProjectedPermutation())
      return std::nullopt;
    for (auto [i, e] : llvm::enumerate(map.getResults()))
      if (llvm::cast<AffineDimExpr>(e).getPosition() == reduced &&
          i + 1 != map.getNumResults())
        return std::nullopt;
  }
  Block &body = op->getRegion(0).front();
  BlockArgument out = body.getArguments().back();
  Type type = out.getType();
  if ((!type.isF32() && !type.isInteger(32)) || !out.hasOneUse())
    return std::nullopt;
  auto yield = llvm::dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!yield || yield.getNumOperands() != 1)
    return std::nullopt;
  Operation *combiner = yield.getOperand(0).getDefiningOp();
  if (!combiner || combiner->getBlock() != &body ||
      combiner->getNumOperands() != 2 || combiner->getNumResults() != 1 ||
      *out.getUsers().begin() != combiner ||
      !llvm::isa<arith::AddFOp, arith::MulFOp, arith::MaximumFOp,
                 arith::MaxNumFOp, arith::MinimumFOp, arith::MinNumFOp,
                 arith::AddIOp, arith::MaxSIOp, arith::MinSIOp>(combiner))
    return std::nullopt;
  std::optional<TypedAttr> neutral = arith::getNeutralElement(combiner);
  if (!neutral)
    return std::nullopt;
  r.combiner = combiner;
  r.neutral = *neutral;
  return r;
}

/// A contraction's operands, A the one with the m dim, and their maps.
struct ContractionOperands {
  Value a, b, out;
  AffineMap mapA, mapB, mapC;

  static ContractionOperands of(linalg::LinalgOp op, const Contraction &c) {
    ContractionOperands o{op.getDpsInputOperand(0)->get(),
                          op.getDpsInputOperand(1)->get(),
                          op.getDpsInitOperand(0)->get(),
                          op.getMatchingIndexingMap(op.getDpsInputOperand(0)),
                          op.getMatchingIndexingMap(op.getDpsInputOperand(1)),
                          op.getMatchingIndexingMap(op.getDpsInitOperand(0))};
    bool aHasM = llvm::any_of(o.mapA.getResults(), [&](AffineExpr e) {
      return llvm::cast<AffineDimExpr>(e).getPosition() == unsigned(c.m);
    });
    if (!aHasM) {
      std::swap(o.a, o.b);
      std::swap(o.mapA, o.mapB);
    }
    return o;
  }
};

/// The indices of `map` (an operand of `c`) at batch, row (m), column (n)
/// and k.
SmallVector<Value> contractionIndices(AffineMap map, const Contraction &c,
                                      Value batch, Value row, Value col,
                                      Value k) {
  SmallVector<Value> idx;
  for (AffineExpr e : map.getResults()) {
    int64_t pos = llvm::cast<AffineDimExpr>(e).getPosition();
    idx.push_back(pos == c.batch ? batch
                  : pos == c.m   ? row
                  : pos == c.n   ? col
                                 : k);
  }
  return idx;
}

/// On a contraction or row reduction whose output a constant fill wrote
/// just before (the fill erased): that constant, the output's value before
/// the op combines its results with it (the kernel writes the combination
/// instead of reading the output first).
constexpr llvm::StringLiteral kInitValueAttr = "loom.init_value";

/// The buffer a memref value views (an argument or an allocation).
Value rootBuffer(Value v) {
  while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
    v = view.getViewSource();
  return v;
}

/// Whether every way to `root`'s memory at the top level of `host` is a
/// view of it (ViewLikeOpInterface) that rootBuffer follows back: it is an
/// argument or an allocation, and no other op makes a memref of it (a
/// transpose, a cast that is not a view) and no top-level load reads it
/// (its value goes into kernels, which read the buffer when they run).
bool onlyViewsReach(Value root, func::FuncOp host) {
  if (!llvm::isa<BlockArgument>(root) && !root.getDefiningOp<memref::AllocOp>())
    return false;
  SmallVector<Value> work = {root};
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (auto view = llvm::dyn_cast<ViewLikeOpInterface>(user)) {
        if (view.getViewSource() == v) {
          work.push_back(view.getViewDest());
          continue;
        }
      }
      if (llvm::isa<memref::LoadOp>(user) && user->getParentOp() == host)
        return false;
      if (llvm::any_of(user->getResultTypes(), llvm::IsaPred<BaseMemRefType>))
        return false;
    }
  }
  return true;
}

/// Folds `fill(cst, C)` into the top-level contraction or row reduction
/// that next touches C's buffer when that op writes the same view C, does
/// not read C's buffer otherwise, and nothing in between uses the buffer:
/// the op carries kInitValueAttr and the fill is gone (a launch and a pass
/// over C fewer; a product's zeros, a max's -inf).
void foldFillsIntoKernels(func::FuncOp host) {
  for (auto fill : llvm::to_vector(host.getOps<linalg::FillOp>())) {
    TypedAttr value;
    Value out = fill.getOutputs()[0];
    if (!fill.hasPureBufferSemantics() ||
        !matchPattern(fill.getInputs()[0], m_Constant(&value)) ||
        value.getType() !=
            llvm::cast<MemRefType>(out.getType()).getElementType())
      continue;
    Value root = rootBuffer(out);
    if (!onlyViewsReach(root, host))
      continue;
    auto usesRoot = [&](Operation *op) {
      WalkResult r = op->walk([&](Operation *inner) {
        for (Value v : inner->getOperands())
          if (llvm::isa<MemRefType>(v.getType()) && rootBuffer(v) == root)
            return WalkResult::interrupt();
        return WalkResult::advance();
      });
      return r.wasInterrupted();
    };
    for (Operation *op = fill->getNextNode(); op; op = op->getNextNode()) {
      if (!usesRoot(op))
        continue;
      auto linalgOp = llvm::dyn_cast<linalg::LinalgOp>(op);
      if (linalgOp &&
          (matchContraction(linalgOp) || matchRowReduction(linalgOp)) &&
          linalgOp.getNumDpsInits() == 1 &&
          linalgOp.getDpsInitOperand(0)->get() == out &&
          !linalgOp->hasAttr(kInitValueAttr) &&
          llvm::none_of(linalgOp.getDpsInputOperands(), [&](OpOperand *in) {
            return rootBuffer(in->get()) == root;
          })) {
        linalgOp->setAttr(kInitValueAttr, value);
        fill->erase();
      }
      break;
    }
  }
}

/// The output's element at `at` before a contraction adds its products to
/// it (or a row reduction combines its total with it): the folded fill's
/// constant, else what the buffer holds.
Value initialValue(OpBuilder &b, Location loc, linalg::LinalgOp op, Value c,
                   ValueRange at) {
  if (auto value = op->getAttrOfType<TypedAttr>(kInitValueAttr))
    return arith::ConstantOp::create(b, loc, value);
  return memref::LoadOp::create(b, loc, c, at);
}

/// Rows and columns of C one thread computes.
constexpr int64_t kTile = 4;

/// The tensor cores' tile (mma.sync m16n8k8 with tf32 operands), and the
/// depth of the tiles a block stages in shared memory.
constexpr int64_t kMmaM = 16, kMmaN = 8, kMmaK = 8, kMmaTileK = 32;

int64_t product(ArrayRef<Range> ranges) {
  int64_t n = 1;
  for (const Range &r : ranges)
    n *= r.trips;
  return n;
}

struct LoomGpuOutlineKernels
    : public loom::nvptx::impl::LoomGpuOutlineKernelsBase<
          LoomGpuOutlineKernels> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize < 1 || blockSize > 1024) {
      module.emitError("loom-gpu-outline-kernels: block-size must be in "
                       "[1, 1024], got ")
          << blockSize;
      return signalPassFailure();
    }
    if (!loom::isTensorCoreMode(tensorCores)) {
      module.emitError("loom-gpu-outline-kernels: tensor-cores must be ")
          << loom::kTensorCoreModes << ", got '" << tensorCores << "'";
      return signalPassFailure();
    }
    Outliner outliner(module, blockSize);
    for (auto host : llvm::to_vector(module.getOps<func::FuncOp>())) {
      if (host.isExternal())
        continue;
      if (failed(outlineFunction(outliner, host)))
        return signalPassFailure();
    }
  }

  /// `op` with its parallel dims outermost (a named op generalized first),
  /// so that its loops are a parallel nest with the reductions inside: a
  /// thread per output, each summing its own elements. Left in their own
  /// order, reduction dims outside the parallel ones (a bias gradient, the
  /// sum over rows of a [rows, features] buffer) made a serial nest, one
  /// GPU thread for the whole sum. Each output's elements are summed in the
  /// same order either way.
  static linalg::LinalgOp parallelDimsFirst(RewriterBase &rewriter,
                                            linalg::LinalgOp op) {
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    SmallVector<unsigned> order;
    for (unsigned i = 0; i < iterators.size(); ++i)
      if (iterators[i] == utils::IteratorType::parallel)
        order.push_back(i);
    size_t parallels = order.size();
    if (parallels == 0 || parallels == iterators.size())
      return op;
    for (unsigned i = 0; i < iterators.size(); ++i)
      if (iterators[i] != utils::IteratorType::parallel)
        order.push_back(i);
    // (A permutation of the dims: sorted means unchanged.)
    if (llvm::is_sorted(order))
      return op;
    auto generic = llvm::dyn_cast<linalg::GenericOp>(op.getOperation());
    if (!generic) {
      FailureOr<linalg::GenericOp> general =
          linalg::generalizeNamedOp(rewriter, op);
      if (failed(general))
        return op;
      generic = *general;
    }
    FailureOr<linalg::GenericOp> swapped =
        linalg::interchangeGenericOp(rewriter, generic, order);
    return succeeded(swapped) ? linalg::LinalgOp(*swapped)
                              : linalg::LinalgOp(generic);
  }

  /// Whether `copy` copies a subview onto the same subview (what
  /// bufferization leaves after an in-place update of a row).
  static bool copiesOntoItself(memref::CopyOp copy) {
    auto from = copy.getSource().getDefiningOp<memref::SubViewOp>();
    auto to = copy.getTarget().getDefiningOp<memref::SubViewOp>();
    return from && to && from.getSource() == to.getSource() &&
           from.getOffsets() == to.getOffsets() &&
           from.getStaticOffsets() == to.getStaticOffsets() &&
           from.getStaticSizes() == to.getStaticSizes() &&
           from.getStaticStrides() == to.getStaticStrides() &&
           from.getSizes().empty() && from.getStrides().empty();
  }

  /// A scatter-add over rows (an embedding's gradient: for each row r,
  /// table[id[r], :] += grad[r, :]) is a serial loop over the rows around a
  /// parallel loop over the columns; ids repeat, so the rows must stay in
  /// order, and it became one GPU thread for all of it. When every store
  /// of the inner loop writes element j of one row of a row-major buffer
  /// (a subview [row, 0] [1, C] [1, 1] of a [R, C] memref, j the inner
  /// loop's index over [0, C)) and that buffer is read only there, two
  /// columns never meet, so the loops swap: a thread per column walks the
  /// rows in order. Loop-carried buffers must come back unchanged (they
  /// stand for their initial values), and a copy of a row onto itself is
  /// dropped. Returns whether it swapped.
  static bool rowsInsideColumns(scf::ForOp loop) {
    Block *body = loop.getBody();
    auto yield = llvm::cast<scf::YieldOp>(body->getTerminator());
    for (auto [arg, yielded] :
         llvm::zip(loop.getRegionIterArgs(), yield.getOperands()))
      if (arg != yielded || !llvm::isa<MemRefType>(arg.getType()))
        return false;
    scf::ParallelOp inner;
    for (Operation &op : body->without_terminator()) {
      if (auto parallel = llvm::dyn_cast<scf::ParallelOp>(op)) {
        if (inner)
          return false;
        inner = parallel;
        continue;
      }
      auto copy = llvm::dyn_cast<memref::CopyOp>(op);
      // Around the inner loop: reads and index arithmetic only.
      if (!(copy && copiesOntoItself(copy)) &&
          !llvm::isa<memref::LoadOp, memref::SubViewOp>(op) &&
          !isMemoryEffectFree(&op))
        return false;
    }
    if (!inner || inner.getNumLoops() != 1 || inner.getNumResults() != 0)
      return false;
    auto lower = getConstantIntValue(inner.getLowerBound()[0]);
    auto upper = getConstantIntValue(inner.getUpperBound()[0]);
    auto step = getConstantIntValue(inner.getStep()[0]);
    if (!lower || !upper || !step || *lower != 0 || *step != 1)
      return false;
    Value column = inner.getInductionVars()[0];
    // The column index, directly or through an identity affine.apply (as
    // linalg's loops index).
    auto isColumn = [&](Value index) {
      if (index == column)
        return true;
      auto apply = index.getDefiningOp<affine::AffineApplyOp>();
      return apply && apply.getAffineMap().isIdentity() &&
             apply.getMapOperands().size() == 1 &&
             apply.getMapOperands()[0] == column;
    };
    bool ok = true;
    llvm::SmallPtrSet<Value, 4> written;
    inner.getBody()->walk([&](Operation *op) {
      if (llvm::isa<memref::LoadOp>(op) || isMemoryEffectFree(op) ||
          llvm::isa<scf::ReduceOp>(op))
        return;
      auto store = llvm::dyn_cast<memref::StoreOp>(op);
      auto row = store ? store.getMemRef().getDefiningOp<memref::SubViewOp>()
                       : memref::SubViewOp();
      auto source =
          row ? llvm::dyn_cast<MemRefType>(row.getSourceType()) : MemRefType();
      if (!row || row->getBlock() != body || !source || source.getRank() != 2 ||
          !source.getLayout().isIdentity() || !source.hasStaticShape() ||
          store.getIndices().size() != 1 || !isColumn(store.getIndices()[0]) ||
          row.getType().getRank() != 1 ||
          row.getStaticSizes() != ArrayRef<int64_t>{1, source.getDimSize(1)} ||
          !llvm::all_of(row.getStaticStrides(),
                        [](int64_t s) { return s == 1; }) ||
          row.getStaticOffsets()[1] != 0 || *upper != source.getDimSize(1)) {
        ok = false;
        return;
      }
      written.insert(row.getSource());
    });
    if (!ok || written.empty())
      return false;
    // What the stores write is read only at the element the same column
    // writes (another column's is another thread's), never around the
    // inner loop.
    auto sourceOf = [](Value memref) -> Value {
      if (auto view = memref.getDefiningOp<memref::SubViewOp>())
        return view.getSource();
      return memref;
    };
    body->walk([&](memref::LoadOp load) {
      if (!written.contains(sourceOf(load.getMemRef())))
        return;
      auto view = load.getMemRef().getDefiningOp<memref::SubViewOp>();
      if (!inner->isAncestor(load) || !view || view->getBlock() != body ||
          view.getStaticSizes() != ArrayRef<int64_t>{1, *upper} ||
          load.getIndices().size() != 1 || !isColumn(load.getIndices()[0]))
        ok = false;
    });
    if (!ok)
      return false;
    OpBuilder b(loop);
    Location loc = loop.getLoc();
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    Value columns = arith::ConstantIndexOp::create(b, loc, *upper);
    scf::ParallelOp::create(
        b, loc, ValueRange{zero}, ValueRange{columns}, ValueRange{one},
        [&](OpBuilder &pb, Location pl, ValueRange ivs) {
          scf::ForOp::create(
              pb, pl, loop.getLowerBound(), loop.getUpperBound(),
              loop.getStep(), ValueRange{},
              [&](OpBuilder &fb, Location fl, Value r, ValueRange) {
                IRMapping map;
                map.map(loop.getInductionVar(), r);
                map.map(column, ivs[0]);
                for (auto [arg, init] :
                     llvm::zip(loop.getRegionIterArgs(), loop.getInitArgs()))
                  map.map(arg, init);
                for (Operation &op : body->without_terminator()) {
                  if (llvm::isa<memref::CopyOp>(op))
                    continue; // onto itself
                  if (&op != inner.getOperation()) {
                    fb.clone(op, map);
                    continue;
                  }
                  for (Operation &nested :
                       inner.getBody()->without_terminator())
                    fb.clone(nested, map);
                }
                scf::YieldOp::create(fb, fl);
              });
        });
    loop.replaceAllUsesWith(loop.getInitArgs());
    loop.erase();
    return true;
  }

  LogicalResult outlineFunction(Outliner &outliner, func::FuncOp host) {
    if (!host.getBody().hasOneBlock())
      return host.emitOpError("has control flow between blocks; the GPU "
                              "pipeline expects one block of host code");
    // A host loop that allocates (an LSTM's time steps, each with its own
    // buffers) is unrolled: each step's launches then read and write their
    // own slices, at offsets that folding makes static again. Other loops
    // (a scatter over data-dependent rows) become serial kernels.
    bool unrolled = false;
    for (bool changed = true; changed;) {
      changed = false;
      for (auto loop : llvm::to_vector(host.getOps<scf::ForOp>())) {
        bool allocates = false;
        loop->walk([&](memref::AllocOp) { allocates = true; });
        if (!allocates)
          continue;
        if (failed(loopUnrollFull(loop)))
          return loop.emitOpError("runs kernels in a loop whose trip count "
                                  "is not static; the GPU pipeline cannot "
                                  "unroll it");
        changed = unrolled = true;
      }
    }
    if (unrolled) {
      MLIRContext *context = host.getContext();
      RewritePatternSet patterns(context);
      for (Dialect *dialect : context->getLoadedDialects())
        dialect->getCanonicalizationPatterns(patterns);
      for (RegisteredOperationName op : context->getRegisteredOperations())
        op.getCanonicalizationPatterns(patterns, context);
      if (failed(applyPatternsGreedily(host, std::move(patterns))))
        return host.emitOpError("did not fold after unrolling its loops");
    }
    foldFillsIntoKernels(host);
    // Contractions at the top level get register-tiled kernels; every other
    // linalg op becomes loops (parallel ones where it has parallel dims).
    SmallVector<linalg::LinalgOp> others;
    host.walk([&](linalg::LinalgOp op) {
      if (op->getParentOp() != host ||
          (!matchContraction(op) && !matchRowReduction(op)))
        others.push_back(op);
    });
    IRRewriter rewriter(host.getContext());
    for (linalg::LinalgOp op : others) {
      rewriter.setInsertionPoint(op);
      linalg::LinalgOp target = parallelDimsFirst(rewriter, op);
      if (failed(linalg::linalgOpToParallelLoops(rewriter, target)))
        return target.emitOpError("could not become loops");
      rewriter.eraseOp(target);
    }
    for (auto loop : llvm::to_vector(host.getOps<scf::ForOp>()))
      rowsInsideColumns(loop);
    SmallVector<Operation *> serial;
    auto flushSerial = [&]() -> LogicalResult {
      if (serial.empty())
        return success();
      SmallVector<Operation *> ops = std::move(serial);
      serial.clear();
      llvm::SmallPtrSet<Operation *, 8> group(ops.begin(), ops.end());
      for (Operation *op : ops)
        for (Operation *user : op->getUsers())
          if (!group.contains(user) && !llvm::any_of(ops, [&](Operation *o) {
                return o->isAncestor(user);
              }))
            return op->emitOpError(
                "computes a value on the device that the host needs; the "
                "GPU pipeline cannot bring it back");
      return outliner.outline(host, ops, "serial", std::nullopt,
                              [&](OpBuilder &b, IRMapping &map, Value) {
                                for (Operation *op : ops)
                                  b.clone(*op, map);
                                return success();
                              });
    };
    for (Operation &opRef : llvm::make_early_inc_range(host.getOps())) {
      Operation *op = &opRef;
      if (staysOnHost(op) || llvm::isa<gpu::LaunchFuncOp>(op)) {
        if (failed(flushSerial()))
          return failure();
        continue;
      }
      if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op)) {
        if (failed(flushSerial()) ||
            failed(outlineParallel(outliner, host, loop)))
          return failure();
        continue;
      }
      if (auto copy = llvm::dyn_cast<memref::CopyOp>(op)) {
        if (failed(flushSerial()) || failed(outlineCopy(outliner, host, copy)))
          return failure();
        continue;
      }
      if (auto linalgOp = llvm::dyn_cast<linalg::LinalgOp>(op)) {
        if (failed(flushSerial()))
          return failure();
        if (auto contraction = matchContraction(linalgOp)) {
          if (failed(useTensorCores(*contraction)
                         ? outlineMmaContraction(outliner, host, linalgOp,
                                                 *contraction)
                         : outlineContraction(outliner, host, linalgOp,
                                              *contraction)))
            return failure();
        } else if (failed(outlineRowReduction(outliner, host, linalgOp,
                                              *matchRowReduction(linalgOp)))) {
          return failure();
        }
        continue;
      }
      serial.push_back(op);
    }
    return flushSerial();
  }

  LogicalResult outlineParallel(Outliner &outliner, func::FuncOp host,
                                scf::ParallelOp loop) {
    if (loop.getNumResults() != 0)
      return loop.emitOpError("reduces into results; the GPU pipeline "
                              "expects loops that store to buffers");
    auto ranges = staticRanges(loop);
    if (failed(ranges))
      return failure();
    int64_t points = product(*ranges);
    // A loop whose innermost dim is a block's threads (barriers, shared
    // memory): blocks of exactly that many threads.
    std::optional<int64_t> block;
    if (auto attr =
            loop->getAttrOfType<IntegerAttr>(loom::nvptx::kBlockThreadsAttr)) {
      block = attr.getInt();
      if (*block < 1 || *block > 1024 || ranges->back().trips != *block)
        return loop.emitOpError("has ")
               << loom::nvptx::kBlockThreadsAttr << " = " << *block
               << " but its innermost dim has " << ranges->back().trips
               << " iterations (expected the same, at most 1024)";
    } else {
      WalkResult blockWork = loop.getBody()->walk([&](Operation *op) {
        if (llvm::isa<gpu::BarrierOp>(op) || isSharedAlloca(op)) {
          op->emitOpError("needs the threads of a block, but its loop has "
                          "no ")
              << loom::nvptx::kBlockThreadsAttr;
          return WalkResult::interrupt();
        }
        return WalkResult::advance();
      });
      if (blockWork.wasInterrupted())
        return failure();
    }
    return outliner.outline(
        host, {loop}, "loop", points,
        [&](OpBuilder &b, IRMapping &map, Value linear) {
          SmallVector<Value> ivs =
              delinearize(b, loop.getLoc(), linear, *ranges);
          for (auto [iv, value] : llvm::zip(loop.getInductionVars(), ivs))
            map.map(iv, value);
          auto kernel =
              llvm::cast<gpu::GPUFuncOp>(b.getInsertionBlock()->getParentOp());
          // A block-tiled kernel holds whole rows per thread: let ptxas
          // use every register the block can have (at most 255 of an SM's
          // 64K) rather than its default cap for small blocks (168 on
          // sm_80, with spills).
          if (block)
            kernel->setAttr("nvvm.maxnreg",
                            b.getI32IntegerAttr(int32_t(std::min<int64_t>(
                                255, (65536 / *block) / 8 * 8))));
          for (Operation &op : loop.getBody()->without_terminator()) {
            // The block's shared memory: a workgroup attribution.
            if (isSharedAlloca(&op)) {
              auto alloca = llvm::cast<memref::AllocaOp>(op);
              map.map(
                  alloca.getResult(),
                  addSharedBuffer(kernel, alloca.getType(), alloca.getLoc()));
              continue;
            }
            b.clone(op, map);
          }
          return success();
        },
        block);
  }

  /// A `memref.alloca` of workgroup (shared) memory.
  static bool isSharedAlloca(Operation *op) {
    auto alloca = llvm::dyn_cast<memref::AllocaOp>(op);
    if (!alloca)
      return false;
    auto space = llvm::dyn_cast_or_null<gpu::AddressSpaceAttr>(
        alloca.getType().getMemorySpace());
    return space && space.getValue() == gpu::AddressSpace::Workgroup;
  }

  /// Contractions big enough for one warp tile take the tensor cores.
  bool useTensorCores(const Contraction &c) {
    return tensorCores != "none" && c.sizes[c.m] >= kMmaM &&
           c.sizes[c.n] >= kMmaN && c.sizes[c.k] >= kMmaK;
  }

  /// Tensor cores (`nvgpu.mma.sync` m16n8k8, tf32 operands, f32
  /// accumulators): a block of 2 x 2 warps computes 64 x 64 of C (per
  /// batch), each warp 32 x 32 as 2 x 4 tiles of 16 x 8. The block's
  /// tiles of A (64 x 32) and B (32 x 64) are double-buffered in shared
  /// memory (neighbouring threads reading neighbouring elements of
  /// whichever dim is contiguous): per step of 32 in k each thread loads
  /// its elements of the next step's tiles into registers before the
  /// step's products and stores them into the other slot after, one
  /// barrier per step. Per 8 of a step, lane (g = lane / 4, t = lane % 4)
  /// reads the fragments that
  /// mma.sync expects: A(g | g + 8, t | t + 4) of each 16-row tile, B(t |
  /// t + 4, g) of each 8-column tile. With "3xtf32" each operand is split
  /// into a tf32 head (rounded to nearest) and the tf32 of the rest, and
  /// three products (small x big, big x small, big x big) keep f32
  /// accuracy (the CUTLASS 3xTF32 scheme); "tf32" takes the heads only;
  /// "bf16" rounds each operand to bf16 and steps k by 16 (m16n8k16:
  /// lane (g, t) reads A(g | g + 8, 2t | 2t + 1 | 2t + 8 | 2t + 9) and B(2t
  /// | 2t + 1 | 2t + 8 | 2t + 9, g), Bf16Mma.h). Rows
  /// and columns past the edges load clamped indices and skip their stores; k
  /// past K loads zeros.
  LogicalResult outlineMmaContraction(Outliner &outliner, func::FuncOp host,
                                      linalg::LinalgOp op,
                                      const Contraction &c) {
    int64_t batches = c.batch >= 0 ? c.sizes[c.batch] : 1;
    int64_t M = c.sizes[c.m], N = c.sizes[c.n], K = c.sizes[c.k];
    constexpr int64_t kWarpsM = 2, kWarpsN = 2, kTilesM = 2, kTilesN = 4;
    constexpr int64_t kBlockM = kWarpsM * kTilesM * kMmaM; // 64
    constexpr int64_t kBlockN = kWarpsN * kTilesN * kMmaN; // 64
    constexpr int64_t kThreads = kWarpsM * kWarpsN * kWarp;
    int64_t blocksM = (M + kBlockM - 1) / kBlockM;
    int64_t blocksN = (N + kBlockN - 1) / kBlockN;
    int64_t points = batches * blocksM * blocksN * kThreads;
    bool split = tensorCores == "3xtf32", bf16 = tensorCores == "bf16";
    int64_t mmaK = bf16 ? loom::nvptx::Bf16Mma::kDepth : kMmaK;
    auto [a, b, out, mapA, mapB, mapC] = ContractionOperands::of(op, c);
    return outliner.outline(
        host, {op.getOperation()}, "mma", points,
        [&](OpBuilder &bld, IRMapping &map, Value linear) -> LogicalResult {
          Location loc = op.getLoc();
          auto cst = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(bld, loc, v);
          };
          auto add = [&](Value x, int64_t v) -> Value {
            return v ? arith::AddIOp::create(bld, loc, x, cst(v)).getResult()
                     : x;
          };
          Value block = arith::DivUIOp::create(bld, loc, linear, cst(kThreads));
          Value tid = arith::RemUIOp::create(bld, loc, linear, cst(kThreads));
          Value warp = arith::DivUIOp::create(bld, loc, tid, cst(kWarp));
          Value lane = arith::RemUIOp::create(bld, loc, tid, cst(kWarp));
          Value g = arith::DivUIOp::create(bld, loc, lane, cst(4));
          Value t = arith::RemUIOp::create(bld, loc, lane, cst(4));
          Value bn = arith::RemUIOp::create(bld, loc, block, cst(blocksN));
          Value rest = arith::DivUIOp::create(bld, loc, block, cst(blocksN));
          Value bm = arith::RemUIOp::create(bld, loc, rest, cst(blocksM));
          Value bi = arith::DivUIOp::create(bld, loc, rest, cst(blocksM));
          Value wm = arith::DivUIOp::create(bld, loc, warp, cst(kWarpsN));
          Value wn = arith::RemUIOp::create(bld, loc, warp, cst(kWarpsN));
          Value A = map.lookup(a), B = map.lookup(b), C = map.lookup(out);
          FloatType f32 = bld.getF32Type();
          // The block's tiles of A (m x k) and B (k x n) in shared memory,
          // rows padded so that a warp's fragment reads (lane g, t at row
          // g, column t of A; row t, column g of B) hit 32 banks.
          auto kernel = llvm::cast<gpu::GPUFuncOp>(
              bld.getInsertionBlock()->getParentOp());
          auto workgroup = gpu::AddressSpaceAttr::get(
              bld.getContext(), gpu::AddressSpace::Workgroup);
          // Two of each: the step's tiles are read from one while the
          // next step's, loaded from global memory before the step's
          // products, are stored into the other.
          Value tileA =
              addSharedBuffer(kernel,
                              MemRefType::get({2, kBlockM, kMmaTileK + 4}, f32,
                                              AffineMap(), workgroup),
                              loc);
          Value tileB =
              addSharedBuffer(kernel,
                              MemRefType::get({2, kMmaTileK, kBlockN + 8}, f32,
                                              AffineMap(), workgroup),
                              loc);
          // The block's first row and column of C; the warp's within the
          // block.
          Value m0Block = arith::MulIOp::create(bld, loc, bm, cst(kBlockM));
          Value n0Block = arith::MulIOp::create(bld, loc, bn, cst(kBlockN));
          Value wmRow =
              arith::MulIOp::create(bld, loc, wm, cst(kTilesM * kMmaM));
          Value wnCol =
              arith::MulIOp::create(bld, loc, wn, cst(kTilesN * kMmaN));
          // Which dim of A and of B is contiguous in memory: neighbouring
          // threads copy neighbouring elements.
          auto innermost = [&](AffineMap m) {
            return int64_t(
                llvm::cast<AffineDimExpr>(m.getResults().back()).getPosition());
          };
          bool aAlongK = innermost(mapA) == c.k;
          bool bAlongN = innermost(mapB) == c.n;
          SmallVector<Value> init(kTilesM * kTilesN,
                                  loom::nvptx::Tf32Mma(bld, loc, split).zero());
          // Element e = i * threads + tid of a tile [rows x cols] (cols
          // fastest when `colsInner`): its place in the tile.
          auto place = [&](OpBuilder &lb, Location l, int64_t i,
                           int64_t tileRows, int64_t tileCols,
                           bool colsInner) -> std::pair<Value, Value> {
            auto lc = [&](int64_t v) -> Value {
              return arith::ConstantIndexOp::create(lb, l, v);
            };
            Value e = arith::AddIOp::create(lb, l, tid, lc(i * kThreads));
            if (colsInner)
              return {arith::DivUIOp::create(lb, l, e, lc(tileCols)),
                      arith::RemUIOp::create(lb, l, e, lc(tileCols))};
            return {arith::RemUIOp::create(lb, l, e, lc(tileRows)),
                    arith::DivUIOp::create(lb, l, e, lc(tileRows))};
          };
          // The thread's elements of the tile from k0 in global memory
          // (indices clamped; zero past K).
          auto loadTile = [&](OpBuilder &lb, Location l, Value global,
                              AffineMap m, Value k0, int64_t tileRows,
                              int64_t tileCols, bool colsInner, bool rowsAreK) {
            auto lc = [&](int64_t v) -> Value {
              return arith::ConstantIndexOp::create(lb, l, v);
            };
            Value zero =
                arith::ConstantFloatOp::create(lb, l, f32, APFloat(0.0f));
            SmallVector<Value> values;
            for (int64_t i = 0; i < tileRows * tileCols / kThreads; ++i) {
              auto [r, q] = place(lb, l, i, tileRows, tileCols, colsInner);
              // (m, k) for A's tile, (k, n) for B's.
              Value kk = arith::AddIOp::create(lb, l, k0, rowsAreK ? r : q);
              Value other = rowsAreK ? q : r;
              Value kIn = arith::CmpIOp::create(
                  lb, l, arith::CmpIPredicate::ult, kk, lc(K));
              kk = arith::MinUIOp::create(lb, l, kk, lc(K - 1));
              Value v;
              if (rowsAreK) {
                Value col = arith::MinUIOp::create(
                    lb, l, arith::AddIOp::create(lb, l, n0Block, other),
                    lc(N - 1));
                v = memref::LoadOp::create(
                    lb, l, global,
                    contractionIndices(m, c, bi, Value(), col, kk));
              } else {
                Value row = arith::MinUIOp::create(
                    lb, l, arith::AddIOp::create(lb, l, m0Block, other),
                    lc(M - 1));
                v = memref::LoadOp::create(
                    lb, l, global,
                    contractionIndices(m, c, bi, row, Value(), kk));
              }
              values.push_back(arith::SelectOp::create(lb, l, kIn, v, zero));
            }
            return values;
          };
          auto storeTile = [&](OpBuilder &lb, Location l, ValueRange values,
                               Value shared, Value slot, int64_t tileRows,
                               int64_t tileCols, bool colsInner) {
            for (auto [i, v] : llvm::enumerate(values)) {
              auto [r, q] =
                  place(lb, l, int64_t(i), tileRows, tileCols, colsInner);
              memref::StoreOp::create(lb, l, v, shared, ValueRange{slot, r, q});
            }
          };
          // The first step's tiles into slot 0.
          storeTile(bld, loc,
                    loadTile(bld, loc, A, mapA, cst(0), kBlockM, kMmaTileK,
                             aAlongK, false),
                    tileA, cst(0), kBlockM, kMmaTileK, aAlongK);
          storeTile(bld, loc,
                    loadTile(bld, loc, B, mapB, cst(0), kMmaTileK, kBlockN,
                             bAlongN, true),
                    tileB, cst(0), kMmaTileK, kBlockN, bAlongN);
          // bf16: one m16n8k16 product per tile pair at depth kk of the
          // step's tiles in slot `cur`.
          auto bf16Step = [&](OpBuilder &ib, Location il, Value cur, Value kk,
                              ValueRange accIn) {
            auto plus = [&](Value x, int64_t v) -> Value {
              return v ? arith::AddIOp::create(
                             ib, il, x,
                             arith::ConstantIndexOp::create(ib, il, v))
                             .getResult()
                       : x;
            };
            Value k2t = arith::AddIOp::create(
                ib, il, kk,
                arith::MulIOp::create(
                    ib, il, t, arith::ConstantIndexOp::create(ib, il, 2)));
            loom::nvptx::Bf16Mma mma(ib, il);
            SmallVector<Value> aFrag, bFrag;
            for (int64_t i = 0; i < kTilesM; ++i) {
              Value lo =
                  plus(arith::AddIOp::create(ib, il, wmRow, g), i * kMmaM);
              Value hi = plus(lo, 8);
              SmallVector<Value> v;
              for (int64_t half : {0, 8})
                for (Value row : {lo, hi})
                  for (int64_t e = 0; e < 2; ++e)
                    v.push_back(memref::LoadOp::create(
                        ib, il, tileA,
                        ValueRange{cur, row, plus(k2t, half + e)}));
              aFrag.push_back(mma.fragment(v));
            }
            for (int64_t j = 0; j < kTilesN; ++j) {
              Value col =
                  plus(arith::AddIOp::create(ib, il, wnCol, g), j * kMmaN);
              SmallVector<Value> v;
              for (int64_t half : {0, 8})
                for (int64_t e = 0; e < 2; ++e)
                  v.push_back(memref::LoadOp::create(
                      ib, il, tileB,
                      ValueRange{cur, plus(k2t, half + e), col}));
              bFrag.push_back(mma.fragment(v));
            }
            SmallVector<Value> next;
            for (int64_t i = 0; i < kTilesM; ++i)
              for (int64_t j = 0; j < kTilesN; ++j)
                next.push_back(
                    mma.mma(aFrag[i], bFrag[j], accIn[i * kTilesN + j]));
            return next;
          };
          gpu::BarrierOp::create(bld, loc);
          auto loop = scf::ForOp::create(
              bld, loc, cst(0), cst(K), cst(kMmaTileK), init,
              [&](OpBuilder &lb, Location l, Value k0, ValueRange acc) {
                auto lc = [&](int64_t v) -> Value {
                  return arith::ConstantIndexOp::create(lb, l, v);
                };
                // This step's tiles are in slot k0 / 32 % 2; the next
                // step's go to the other (loads past K are clamped: the
                // last step's are not used).
                Value cur = arith::RemUIOp::create(
                    lb, l, arith::DivUIOp::create(lb, l, k0, lc(kMmaTileK)),
                    lc(2));
                Value nxt = arith::SubIOp::create(lb, l, lc(1), cur);
                Value k1 = arith::AddIOp::create(lb, l, k0, lc(kMmaTileK));
                SmallVector<Value> nextA = loadTile(lb, l, A, mapA, k1, kBlockM,
                                                    kMmaTileK, aAlongK, false);
                SmallVector<Value> nextB = loadTile(
                    lb, l, B, mapB, k1, kMmaTileK, kBlockN, bAlongN, true);
                auto steps = scf::ForOp::create(
                    lb, l, lc(0), lc(kMmaTileK), lc(mmaK), acc,
                    [&](OpBuilder &ib, Location il, Value kk,
                        ValueRange accIn) {
                      auto ic = [&](int64_t v) -> Value {
                        return arith::ConstantIndexOp::create(ib, il, v);
                      };
                      auto plus = [&](Value x, int64_t v) -> Value {
                        return v ? arith::AddIOp::create(ib, il, x, ic(v))
                                       .getResult()
                                 : x;
                      };
                      if (bf16) {
                        scf::YieldOp::create(ib, il,
                                             bf16Step(ib, il, cur, kk, accIn));
                        return;
                      }
                      Value kLo = arith::AddIOp::create(ib, il, kk, t);
                      Value kHi = plus(kLo, 4);
                      loom::nvptx::Tf32Mma mma(ib, il, split);
                      SmallVector<loom::nvptx::Tf32Mma::Fragment> aFrag, bFrag;
                      for (int64_t i = 0; i < kTilesM; ++i) {
                        Value lo = plus(arith::AddIOp::create(ib, il, wmRow, g),
                                        i * kMmaM);
                        Value hi = plus(lo, 8);
                        SmallVector<Value> v;
                        for (auto [row, col] : {std::pair(lo, kLo),
                                                {hi, kLo},
                                                {lo, kHi},
                                                {hi, kHi}})
                          v.push_back(memref::LoadOp::create(
                              ib, il, tileA, ValueRange{cur, row, col}));
                        aFrag.push_back(mma.fragment(v));
                      }
                      for (int64_t j = 0; j < kTilesN; ++j) {
                        Value col = plus(
                            arith::AddIOp::create(ib, il, wnCol, g), j * kMmaN);
                        SmallVector<Value> v = {
                            memref::LoadOp::create(ib, il, tileB,
                                                   ValueRange{cur, kLo, col}),
                            memref::LoadOp::create(ib, il, tileB,
                                                   ValueRange{cur, kHi, col})};
                        bFrag.push_back(mma.fragment(v));
                      }
                      SmallVector<Value> next;
                      for (int64_t i = 0; i < kTilesM; ++i)
                        for (int64_t j = 0; j < kTilesN; ++j)
                          next.push_back(mma.mma(aFrag[i], bFrag[j],
                                                 accIn[i * kTilesN + j]));
                      scf::YieldOp::create(ib, il, next);
                    });
                // The next step's tiles into the other slot, then the
                // barrier after which they are read (and this step's
                // slot is free to be overwritten).
                storeTile(lb, l, nextA, tileA, nxt, kBlockM, kMmaTileK,
                          aAlongK);
                storeTile(lb, l, nextB, tileB, nxt, kMmaTileK, kBlockN,
                          bAlongN);
                gpu::BarrierOp::create(lb, l);
                scf::YieldOp::create(lb, l, steps.getResults());
              });
          // Accumulator (r, e) of a tile: row g + 8 r, column 2 t + e.
          Value m0 = arith::AddIOp::create(
              bld, loc, arith::AddIOp::create(bld, loc, m0Block, wmRow), g);
          Value nBase = arith::AddIOp::create(bld, loc, n0Block, wnCol);
          Value t2 = arith::MulIOp::create(bld, loc, t, cst(2));
          for (int64_t i = 0; i < kTilesM; ++i)
            for (int64_t j = 0; j < kTilesN; ++j)
              for (int64_t r = 0; r < 2; ++r)
                for (int64_t e = 0; e < 2; ++e) {
                  Value row = add(m0, i * kMmaM + r * 8);
                  Value col = arith::AddIOp::create(
                      bld, loc, add(nBase, j * kMmaN + e), t2);
                  Value inside;
                  if (M % kBlockM)
                    inside = arith::CmpIOp::create(
                        bld, loc, arith::CmpIPredicate::ult, row, cst(M));
                  if (N % kBlockN) {
                    Value colIn = arith::CmpIOp::create(
                        bld, loc, arith::CmpIPredicate::ult, col, cst(N));
                    inside =
                        inside ? arith::AndIOp::create(bld, loc, inside, colIn)
                                     .getResult()
                               : colIn;
                  }
                  OpBuilder::InsertionGuard guard(bld);
                  if (inside) {
                    auto check = scf::IfOp::create(bld, loc, inside, false);
                    bld.setInsertionPoint(check.thenBlock()->getTerminator());
                  }
                  Value v = vector::ExtractOp::create(
                      bld, loc, loop.getResult(i * kTilesN + j),
                      ArrayRef<int64_t>{r, e});
                  SmallVector<Value> at =
                      contractionIndices(mapC, c, bi, row, col, Value());
                  Value old = initialValue(bld, loc, op, C, at);
                  memref::StoreOp::create(
                      bld, loc, arith::AddFOp::create(bld, loc, old, v), C, at);
                }
          return success();
        },
        kThreads);
  }

  /// One thread per 4 x 4 block of C (per batch), the columns fastest:
  /// for each k it loads 4 values of A and 4 of B (B's rows coalesced
  /// across a warp, A's values shared by it) into 16 accumulators, then
  /// adds them to C. Tails read clamped indices and skip their stores.
  LogicalResult outlineContraction(Outliner &outliner, func::FuncOp host,
                                   linalg::LinalgOp op, const Contraction &c) {
    int64_t batches = c.batch >= 0 ? c.sizes[c.batch] : 1;
    int64_t M = c.sizes[c.m], N = c.sizes[c.n], K = c.sizes[c.k];
    int64_t tilesM = (M + kTile - 1) / kTile, tilesN = (N + kTile - 1) / kTile;
    int64_t points = batches * tilesM * tilesN;
    auto [a, b, out, mapA, mapB, mapC] = ContractionOperands::of(op, c);
    return outliner.outline(
        host, {op.getOperation()}, "matmul", points,
        [&](OpBuilder &bld, IRMapping &map, Value linear) -> LogicalResult {
          Location loc = op.getLoc();
          auto cst = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(bld, loc, v);
          };
          Value tn = arith::RemUIOp::create(bld, loc, linear, cst(tilesN));
          Value rest = arith::DivUIOp::create(bld, loc, linear, cst(tilesN));
          Value tm = arith::RemUIOp::create(bld, loc, rest, cst(tilesM));
          Value bi = arith::DivUIOp::create(bld, loc, rest, cst(tilesM));
          Value m0 = arith::MulIOp::create(bld, loc, tm, cst(kTile));
          Value n0 = arith::MulIOp::create(bld, loc, tn, cst(kTile));
          SmallVector<Value> rows, cols; // clamped, for loads
          SmallVector<Value> rowsRaw, colsRaw;
          for (int64_t i = 0; i < kTile; ++i) {
            Value r = arith::AddIOp::create(bld, loc, m0, cst(i));
            Value q = arith::AddIOp::create(bld, loc, n0, cst(i));
            rowsRaw.push_back(r);
            colsRaw.push_back(q);
            rows.push_back(arith::MinUIOp::create(bld, loc, r, cst(M - 1)));
            cols.push_back(arith::MinUIOp::create(bld, loc, q, cst(N - 1)));
          }
          auto indices = [&](AffineMap m, Value batch, Value row, Value col,
                             Value kk) {
            return contractionIndices(m, c, batch, row, col, kk);
          };
          Value A = map.lookup(a), B = map.lookup(b), C = map.lookup(out);
          Value zero = arith::ConstantFloatOp::create(
              bld, loc, bld.getF32Type(), APFloat(0.0f));
          SmallVector<Value> init(kTile * kTile, zero);
          auto loop = scf::ForOp::create(
              bld, loc, cst(0), cst(K), cst(1), init,
              [&](OpBuilder &lb, Location l, Value kk, ValueRange acc) {
                SmallVector<Value> av, bv, next;
                for (int64_t i = 0; i < kTile; ++i)
                  av.push_back(memref::LoadOp::create(
                      lb, l, A, indices(mapA, bi, rows[i], Value(), kk)));
                for (int64_t j = 0; j < kTile; ++j)
                  bv.push_back(memref::LoadOp::create(
                      lb, l, B, indices(mapB, bi, Value(), cols[j], kk)));
                for (int64_t i = 0; i < kTile; ++i)
                  for (int64_t j = 0; j < kTile; ++j)
                    next.push_back(math::FmaOp::create(lb, l, av[i], bv[j],
                                                       acc[i * kTile + j]));
                scf::YieldOp::create(lb, l, next);
              });
          for (int64_t i = 0; i < kTile; ++i)
            for (int64_t j = 0; j < kTile; ++j) {
              Value inside;
              if (M % kTile)
                inside = arith::CmpIOp::create(
                    bld, loc, arith::CmpIPredicate::ult, rowsRaw[i], cst(M));
              if (N % kTile) {
                Value colIn = arith::CmpIOp::create(
                    bld, loc, arith::CmpIPredicate::ult, colsRaw[j], cst(N));
                inside = inside ? arith::AndIOp::create(bld, loc, inside, colIn)
                                      .getResult()
                                : colIn;
              }
              OpBuilder::InsertionGuard guard(bld);
              if (inside) {
                auto check = scf::IfOp::create(bld, loc, inside, false);
                bld.setInsertionPoint(check.thenBlock()->getTerminator());
              }
              SmallVector<Value> at =
                  indices(mapC, bi, rowsRaw[i], colsRaw[j], Value());
              Value old = initialValue(bld, loc, op, C, at);
              Value sum = arith::AddFOp::create(bld, loc, old,
                                                loop.getResult(i * kTile + j));
              memref::StoreOp::create(bld, loc, sum, C, at);
            }
          return success();
        });
  }

  /// A warp per output: lane l combines the inputs at r = l, l + 32, ...
  /// from the combiner's neutral element, five xor shuffles combine the 32
  /// partials (every lane ends with the total), and lane 0 combines it
  /// with the output's value. Warps past the last output read the last
  /// one's inputs and store nothing, so that every lane of a warp reaches
  /// the shuffles. Few long rows take a block (256 threads) each: thread
  /// l from r = l step 256, the warps' totals through shared memory and a
  /// barrier, then three more shuffles over the 8 of them.
  LogicalResult outlineRowReduction(Outliner &outliner, func::FuncOp host,
                                    linalg::LinalgOp op,
                                    const RowReduction &red) {
    SmallVector<Range> ranges;
    for (int64_t size : ArrayRef<int64_t>(red.sizes).drop_back())
      ranges.push_back({0, size, 1, size});
    int64_t rows = product(ranges), length = red.sizes.back();
    if (rows == 0)
      return outliner.outline(
          host, {op.getOperation()}, "reduce", 0,
          [](OpBuilder &, IRMapping &, Value) { return success(); });
    // Few long rows: a block per row (a warp each would leave the GPU
    // idle: GPT-2's 256 rows of 50257 logits).
    bool perBlock = rows < kFewRows && length >= kLongRow;
    int64_t rowThreads = perBlock ? kRowBlock : kWarp;
    int64_t rowsPerBlock =
        perBlock ? 1 : std::max<int64_t>(1, std::min(blockSize / kWarp, rows));
    int64_t blocks = (rows + rowsPerBlock - 1) / rowsPerBlock;
    int64_t points = blocks * rowsPerBlock * rowThreads;
    Block &body = op->getRegion(0).front();
    unsigned reduced = unsigned(red.sizes.size() - 1);
    return outliner.outline(
        host, {op.getOperation()}, "reduce", points,
        [&](OpBuilder &b, IRMapping &map, Value linear) -> LogicalResult {
          Location loc = op.getLoc();
          auto cst = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(b, loc, v);
          };
          // The row's index (warp or block) and the thread's in the row.
          Value warp = arith::DivUIOp::create(b, loc, linear, cst(rowThreads));
          Value lane = arith::RemUIOp::create(b, loc, linear, cst(rowThreads));
          Value row = arith::MinUIOp::create(b, loc, warp, cst(rows - 1));
          SmallVector<Value> ivs = delinearize(b, loc, row, ranges);
          if (ranges.empty())
            ivs.clear();
          auto indices = [&](OpOperand &operand, Value r) {
            SmallVector<Value> idx;
            for (AffineExpr e :
                 op.getMatchingIndexingMap(&operand).getResults()) {
              unsigned pos = llvm::cast<AffineDimExpr>(e).getPosition();
              idx.push_back(pos == reduced ? r : ivs[pos]);
            }
            return idx;
          };
          Value neutral = arith::ConstantOp::create(b, loc, red.neutral);
          BlockArgument outArg = body.getArguments().back();
          auto loop = scf::ForOp::create(
              b, loc, lane, cst(length), cst(rowThreads), ValueRange{neutral},
              [&](OpBuilder &lb, Location l, Value r, ValueRange acc) {
                IRMapping inner = map;
                for (OpOperand *input : op.getDpsInputOperands())
                  inner.map(body.getArgument(input->getOperandNumber()),
                            memref::LoadOp::create(lb, l,
                                                   map.lookup(input->get()),
                                                   indices(*input, r)));
                inner.map(outArg, acc.front());
                for (Operation &nested : body.without_terminator()) {
                  if (auto index = llvm::dyn_cast<linalg::IndexOp>(nested)) {
                    inner.map(index.getResult(), index.getDim() == reduced
                                                     ? r
                                                     : ivs[index.getDim()]);
                    continue;
                  }
                  lb.clone(nested, inner);
                }
                scf::YieldOp::create(
                    lb, l, inner.lookup(body.getTerminator()->getOperand(0)));
              });
          // combine(a, b): the region's combining op on other operands.
          Value other = red.combiner->getOperand(0) == outArg
                            ? red.combiner->getOperand(1)
                            : red.combiner->getOperand(0);
          auto combine = [&](Value a, Value c) {
            IRMapping m;
            m.map(outArg, a);
            m.map(other, c);
            return b.clone(*red.combiner, m)->getResult(0);
          };
          // Every lane of a warp gets the warp's total.
          auto butterfly = [&](Value v, int32_t lanes) {
            for (int32_t offset = lanes / 2; offset > 0; offset /= 2) {
              auto shuffle = gpu::ShuffleOp::create(
                  b, loc, v, offset, int32_t(kWarp), gpu::ShuffleMode::XOR);
              v = combine(v, shuffle.getShuffleResult());
            }
            return v;
          };
          Value total = butterfly(loop.getResult(0), kWarp);
          if (perBlock) {
            // The warps' totals through shared memory, then combined by
            // every warp alike (lanes past them take the neutral element).
            constexpr int64_t warps = kRowBlock / kWarp;
            auto kernel = llvm::cast<gpu::GPUFuncOp>(
                b.getInsertionBlock()->getParentOp());
            Value partials = addSharedBuffer(
                kernel,
                MemRefType::get(
                    {warps}, total.getType(), AffineMap(),
                    gpu::AddressSpaceAttr::get(b.getContext(),
                                               gpu::AddressSpace::Workgroup)),
                loc);
            Value w = arith::DivUIOp::create(b, loc, lane, cst(kWarp));
            Value wl = arith::RemUIOp::create(b, loc, lane, cst(kWarp));
            Value leader = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::eq, wl, cst(0));
            auto write = scf::IfOp::create(b, loc, leader, /*withElse=*/false);
            {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPoint(write.thenBlock()->getTerminator());
              memref::StoreOp::create(b, loc, total, partials, ValueRange{w});
            }
            gpu::BarrierOp::create(b, loc);
            Value p = memref::LoadOp::create(
                b, loc, partials,
                ValueRange{arith::MinUIOp::create(b, loc, wl, cst(warps - 1))});
            Value some = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::ult, wl, cst(warps));
            total = butterfly(arith::SelectOp::create(b, loc, some, p, neutral),
                              warps);
          }
          Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                              lane, cst(0));
          Value inside = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::ult, warp, cst(rows));
          auto store = scf::IfOp::create(
              b, loc, arith::AndIOp::create(b, loc, first, inside),
              /*withElse=*/false);
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(store.thenBlock()->getTerminator());
          OpOperand &init = *op.getDpsInitOperand(0);
          Value output = map.lookup(init.get());
          SmallVector<Value> at = indices(init, Value());
          Value old = initialValue(b, loc, op, output, at);
          memref::StoreOp::create(b, loc, combine(old, total), output, at);
          return success();
        },
        rowsPerBlock *rowThreads);
  }

  LogicalResult outlineCopy(Outliner &outliner, func::FuncOp host,
                            memref::CopyOp copy) {
    auto type = llvm::cast<MemRefType>(copy.getTarget().getType());
    if (!type.hasStaticShape())
      return copy.emitOpError("copies a buffer of dynamic shape; the GPU "
                              "pipeline expects static shapes");
    SmallVector<Range> ranges;
    for (int64_t size : type.getShape())
      ranges.push_back({0, size, 1, size});
    int64_t points = product(ranges);
    return outliner.outline(
        host, {copy}, "copy", points,
        [&](OpBuilder &b, IRMapping &map, Value linear) {
          Location loc = copy.getLoc();
          SmallVector<Value> ivs = delinearize(b, loc, linear, ranges);
          if (ranges.empty())
            ivs.clear();
          Value x =
              memref::LoadOp::create(b, loc, map.lookup(copy.getSource()), ivs);
          memref::StoreOp::create(b, loc, x, map.lookup(copy.getTarget()), ivs);
          return success();
        });
  }
};

} // namespace
