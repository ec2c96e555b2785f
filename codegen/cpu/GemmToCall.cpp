//===- GemmToCall.cpp - Contractions on buffers to loom_sgemm calls -------===//
//
// After bufferization and deallocation: every contraction that loom_sgemm
// computes (codegen/cpu/Gemm.h) becomes a call with the base address and
// the strides of each operand, read from the buffers' strided metadata, so
// transposed and sliced operands (attention's k^T, x @ W^T, one thread's
// share of a GEMM) go straight to the kernel's packing. A GEMM paired with
// an epilogue (loom-cpu-fuse-gemm-epilogues) calls loom_sgemm_epilogue with
// a function compiled from the epilogue generic's body, which the kernel
// runs on each finished tile; the generic itself is then erased.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Gemm.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#define DEBUG_TYPE "loom-cpu-gemm-to-call"

namespace loom::cpu {
#define GEN_PASS_DEF_LOOMCPUGEMMTOCALL
#include "codegen/cpu/Passes.h.inc"
} // namespace loom::cpu

using namespace mlir;

namespace {

/// One operand's address and its stride along each loop of the op (0 for a
/// loop its map does not use), as i64 values built before `op`.
struct StridedOperand {
  Value address;
  SmallVector<Value> loopStrides;
};

StridedOperand describe(OpBuilder &b, Location loc, Value buffer,
                        AffineMap map) {
  auto i64 = b.getI64Type();
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, buffer);
  Value aligned =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
  auto asI64 = [&](Value index) -> Value {
    return arith::IndexCastOp::create(b, loc, i64, index);
  };
  Value bytes = arith::MulIOp::create(
      b, loc, asI64(meta.getOffset()),
      arith::ConstantIntOp::create(b, loc, i64, sizeof(float)));
  StridedOperand result;
  result.address = arith::AddIOp::create(b, loc, asI64(aligned), bytes);
  Value zero = arith::ConstantIntOp::create(b, loc, i64, 0);
  result.loopStrides.assign(map.getNumDims(), zero);
  for (auto [pos, expr] : llvm::enumerate(map.getResults()))
    if (auto dim = llvm::dyn_cast<AffineDimExpr>(expr)) // not a broadcast 0
      result.loopStrides[dim.getPosition()] = asI64(meta.getStrides()[pos]);
  return result;
}

/// The static stride of `buffer`'s dimension that `map` indexes with loop
/// `loop`, if known.
std::optional<int64_t> staticStride(Value buffer, AffineMap map, int64_t loop) {
  auto type = llvm::cast<MemRefType>(buffer.getType());
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)))
    return std::nullopt;
  for (auto [pos, expr] : llvm::enumerate(map.getResults()))
    if (llvm::cast<AffineDimExpr>(expr).getPosition() == loop)
      return ShapedType::isDynamic(strides[pos])
                 ? std::nullopt
                 : std::optional<int64_t>(strides[pos]);
  return std::nullopt;
}

/// The type of an epilogue function (loom_gemm_epilogue_fn): context, row,
/// col, rows, cols.
FunctionType epilogueType(Builder &b) {
  return b.getFunctionType(SmallVector<Type>(5, b.getI64Type()), {});
}

func::FuncOp declareSgemm(ModuleOp module, bool withEpilogue) {
  StringRef name =
      withEpilogue ? loom::cpu::kSgemmEpilogueSymbol : loom::cpu::kSgemmSymbol;
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  SmallVector<Type> args(16, b.getI64Type());
  if (withEpilogue) {
    // The epilogue's address: a function value here, a pointer in LLVM,
    // which the C side reads as an integer (the same register).
    args.push_back(epilogueType(b));
    args.push_back(b.getI64Type());
  }
  args.push_back(b.getI64Type()); // threads
  auto fn = func::FuncOp::create(b, module.getLoc(), name,
                                 b.getFunctionType(args, {}));
  fn.setPrivate();
  return fn;
}

/// The buffer that `buffer` is a subview or reshape of (a workspace slot,
/// an allocation or an argument: not the workspace itself).
Value rootOf(Value buffer) {
  while (Operation *def = buffer.getDefiningOp()) {
    if (!llvm::isa<memref::SubViewOp, memref::ExpandShapeOp,
                   memref::CollapseShapeOp, memref::CastOp>(def))
      break;
    buffer = def->getOperand(0);
  }
  return buffer;
}

/// An epilogue generic on buffers and what its compiled form needs.
struct Epilogue {
  linalg::GenericOp generic;
  /// The operand that reads the product.
  unsigned productOperand = 0;
  func::FuncOp function; // built on first use
};

/// Whether the kernel can run `e`'s generic on its blocks: every operand's
/// columns (the last loop) contiguous or broadcast.
bool compilable(const Epilogue &e) {
  linalg::GenericOp g = e.generic;
  unsigned last = g.getNumLoops() - 1;
  for (OpOperand &operand : g->getOpOperands()) {
    auto type = llvm::dyn_cast<MemRefType>(operand.get().getType());
    if (!type || !type.getElementType().isF32())
      return false;
    AffineMap map = g.getMatchingIndexingMap(&operand);
    for (auto [pos, expr] : llvm::enumerate(map.getResults())) {
      auto dim = llvm::dyn_cast<AffineDimExpr>(expr);
      if (!dim || dim.getPosition() != last)
        continue;
      SmallVector<int64_t> strides;
      int64_t offset;
      if (failed(type.getStridesAndOffset(strides, offset)) ||
          strides[pos] != 1)
        return false;
    }
  }
  return true;
}

/// Columns per step of the epilogue: four of the host's vectors (32 f32
/// with AVX2, 64 with AVX-512), four independent chains of vector math as
/// in the vectorized elementwise ops (with fewer, the epilogue's math was
/// latency-bound).
int64_t epilogueLanes() { return 4 * loom::cpu::hostVectorWidth(); }

/// The context the caller passes with the epilogue: [0] the first row and
/// [1] the first column of this call's C within the epilogue's iteration
/// space; then per operand of the generic its address (of element 0...0)
/// and its stride along each loop (elements, 0 where the map ignores it).
int64_t contextSlots(linalg::GenericOp g) {
  return 2 + int64_t(g->getNumOperands()) * (1 + g.getNumLoops());
}
/// The slot of operand `k`'s address; its stride along loop t follows at
/// + 1 + t.
int64_t addressSlot(int64_t k, unsigned loops) { return 2 + k * (1 + loops); }

/// Compiles `e`'s body into `void @name(context, row, col, rows, cols)`:
/// per row of the block, the row's operand addresses from its position in
/// the iteration space, then the columns in vectors (masked at the end):
/// loads, the body on vectors, stores.
func::FuncOp buildEpilogueFunction(ModuleOp module, Epilogue &e,
                                   StringRef name) {
  linalg::GenericOp g = e.generic;
  Location loc = g.getLoc();
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, loc, name, epilogueType(b));
  fn.setPrivate();
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Type i64 = b.getI64Type(), f32 = b.getF32Type();
  Type ptrType = LLVM::LLVMPointerType::get(b.getContext());
  int64_t lanes = epilogueLanes();
  auto vectorOf = [&](Type t) { return VectorType::get({lanes}, t); };
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(b, loc, i64, v);
  };
  auto toPtr = [&](Value address) -> Value {
    return LLVM::IntToPtrOp::create(b, loc, ptrType, address);
  };
  Value context = entry->getArgument(0);
  auto slot = [&](int64_t k) -> Value {
    Value address = arith::AddIOp::create(b, loc, context, constant(8 * k));
    return LLVM::LoadOp::create(b, loc, i64, toPtr(address), 8);
  };
  unsigned loops = g.getNumLoops(), operands = g->getNumOperands();
  Value row0 = arith::AddIOp::create(b, loc, slot(0), entry->getArgument(1));
  Value col0 = arith::AddIOp::create(b, loc, slot(1), entry->getArgument(2));
  SmallVector<Value> base(operands);
  SmallVector<SmallVector<Value>> stride(operands);
  for (unsigned k = 0; k < operands; ++k) {
    base[k] = slot(addressSlot(k, loops));
    for (unsigned t = 0; t < loops; ++t)
      stride[k].push_back(slot(addressSlot(k, loops) + 1 + t));
  }
  SmallVector<int64_t> ranges = g.getStaticLoopRanges();
  auto asIndex = [&](Value v) -> Value {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
  };
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  auto rows =
      scf::ForOp::create(b, loc, zero, asIndex(entry->getArgument(3)), one);
  b.setInsertionPointToStart(rows.getBody());
  // The row's coordinates in the leading loops (row-major over their
  // ranges), then each operand's address of its first column.
  Value row = arith::AddIOp::create(
      b, loc, row0,
      arith::IndexCastOp::create(b, loc, i64, rows.getInductionVar()));
  SmallVector<Value> coordinate(loops - 1);
  Value rest = row;
  for (int t = int(loops) - 2; t >= 0; --t) {
    Value size = constant(ranges[t]);
    coordinate[t] = t == 0 ? rest : arith::RemUIOp::create(b, loc, rest, size);
    if (t > 0)
      rest = arith::DivUIOp::create(b, loc, rest, size);
  }
  SmallVector<Value> rowAddress(operands);
  for (unsigned k = 0; k < operands; ++k) {
    Value offset = constant(0);
    for (unsigned t = 0; t + 1 < loops; ++t)
      offset = arith::AddIOp::create(
          b, loc, offset,
          arith::MulIOp::create(b, loc, coordinate[t], stride[k][t]));
    rowAddress[k] = arith::AddIOp::create(
        b, loc, base[k], arith::MulIOp::create(b, loc, offset, constant(4)));
  }
  unsigned last = loops - 1;
  auto usesColumns = [&](OpOperand &operand) {
    AffineMap map = g.getMatchingIndexingMap(&operand);
    return llvm::any_of(map.getResults(), [&](AffineExpr expr) {
      auto dim = llvm::dyn_cast<AffineDimExpr>(expr);
      return dim && dim.getPosition() == last;
    });
  };
  Block &body = g.getRegion().front();
  auto yield = llvm::cast<linalg::YieldOp>(body.getTerminator());
  // One vector of columns from `c` on: loads, the body, stores; masked
  // (`mask` set) only for the last, partial vector of a row (masked stores
  // are slow on some cores).
  auto emitColumns = [&](Value c, Value mask) {
    Value column = arith::AddIOp::create(
        b, loc, col0, arith::IndexCastOp::create(b, loc, i64, c));
    Value columnBytes = arith::MulIOp::create(b, loc, column, constant(4));
    Value padding = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vectorOf(f32), b.getF32FloatAttr(0)));
    IRMapping mapping;
    for (OpOperand *input : g.getDpsInputOperands()) {
      unsigned k = input->getOperandNumber();
      Value value;
      if (usesColumns(*input)) {
        Value address =
            toPtr(arith::AddIOp::create(b, loc, rowAddress[k], columnBytes));
        value = mask ? Value(LLVM::MaskedLoadOp::create(
                           b, loc, vectorOf(f32), address, mask, padding, 4u))
                     : Value(LLVM::LoadOp::create(b, loc, vectorOf(f32),
                                                  address, 4));
      } else {
        Value scalar =
            LLVM::LoadOp::create(b, loc, f32, toPtr(rowAddress[k]), 4);
        value = vector::BroadcastOp::create(b, loc, vectorOf(f32), scalar);
      }
      mapping.map(body.getArgument(k), value);
    }
    // The body on vectors; the constants it captures as splats.
    for (Operation &op : body.without_terminator()) {
      for (Value operand : op.getOperands()) {
        if (mapping.contains(operand))
          continue;
        auto cst = operand.getDefiningOp<arith::ConstantOp>();
        auto typed = llvm::cast<TypedAttr>(cst.getValue());
        mapping.map(operand, arith::ConstantOp::create(
                                 b, loc,
                                 DenseElementsAttr::get(
                                     vectorOf(typed.getType()), typed)));
      }
      Operation *clone = b.clone(op, mapping);
      for (Value result : clone->getResults())
        result.setType(vectorOf(result.getType()));
    }
    for (OpOperand &init : g.getDpsInitsMutable()) {
      unsigned k = init.getOperandNumber();
      Value value = mapping.lookup(yield.getOperand(k - g.getNumDpsInputs()));
      Value address =
          toPtr(arith::AddIOp::create(b, loc, rowAddress[k], columnBytes));
      if (mask)
        LLVM::MaskedStoreOp::create(b, loc, value, address, mask, 4u);
      else
        LLVM::StoreOp::create(b, loc, value, address, 4);
    }
  };
  Value cols = asIndex(entry->getArgument(4));
  Value step = arith::ConstantIndexOp::create(b, loc, lanes);
  Value full = arith::MulIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, cols, step), step);
  auto columns = scf::ForOp::create(b, loc, zero, full, step);
  b.setInsertionPointToStart(columns.getBody());
  emitColumns(columns.getInductionVar(), nullptr);
  b.setInsertionPointAfter(columns);
  Value left = arith::SubIOp::create(b, loc, cols, full);
  auto tail = scf::IfOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, left, zero),
      /*withElseRegion=*/false);
  b.setInsertionPointToStart(&tail.getThenRegion().front());
  emitColumns(full, vector::CreateMaskOp::create(
                        b, loc, VectorType::get({lanes}, b.getI1Type()),
                        ValueRange{left}));
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc);
  return fn;
}

/// `value` where `at` can use it: itself, or a copy of the pure view ops
/// (expand_shape of the product, subviews) that make it from values that
/// dominate `at`; null when it is computed otherwise.
Value availableAt(OpBuilder &b, Value value, Operation *at,
                  DominanceInfo &dominance, int depth = 0) {
  if (dominance.properlyDominates(value, at))
    return value;
  Operation *def = value.getDefiningOp();
  if (!def || depth > 8 || !llvm::isa<ViewLikeOpInterface>(def) ||
      def->getNumRegions() != 0 || def->getNumResults() != 1)
    return nullptr;
  IRMapping mapping;
  for (Value operand : def->getOperands()) {
    Value available = availableAt(b, operand, at, dominance, depth + 1);
    if (!available)
      return nullptr;
    mapping.map(operand, available);
  }
  return b.clone(*def, mapping)->getResult(0);
}

/// Fills the context of `e` for a GEMM whose C is `c`, with the generic's
/// operands as `operands` (available here), and returns its address.
Value buildContext(OpBuilder &b, Location loc, const Epilogue &e, Value c,
                   int64_t cRowStride, ArrayRef<Value> operands) {
  linalg::GenericOp g = e.generic;
  Type i64 = b.getI64Type();
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(b, loc, i64, v);
  };
  auto slots =
      memref::AllocaOp::create(b, loc, MemRefType::get({contextSlots(g)}, i64));
  auto store = [&](int64_t k, Value v) {
    memref::StoreOp::create(
        b, loc, v, slots,
        ValueRange{arith::ConstantIndexOp::create(b, loc, k)});
  };
  // Where this call's C starts within the product the generic reads.
  auto addressOf = [&](Value buffer) {
    auto type = llvm::cast<MemRefType>(buffer.getType());
    return describe(b, loc, buffer,
                    AffineMap::getMultiDimIdentityMap(type.getRank(),
                                                      b.getContext()))
        .address;
  };
  Value delta = arith::DivSIOp::create(
      b, loc,
      arith::SubIOp::create(b, loc, addressOf(c),
                            addressOf(operands[e.productOperand])),
      constant(4));
  store(0, arith::DivSIOp::create(b, loc, delta, constant(cRowStride)));
  store(1, arith::RemSIOp::create(b, loc, delta, constant(cRowStride)));
  unsigned loops = g.getNumLoops();
  for (OpOperand &operand : g->getOpOperands()) {
    int64_t k = operand.getOperandNumber();
    StridedOperand d =
        describe(b, loc, operands[k], g.getMatchingIndexingMap(&operand));
    store(addressSlot(k, loops), d.address);
    for (unsigned t = 0; t < loops; ++t)
      store(addressSlot(k, loops) + 1 + t, d.loopStrides[t]);
  }
  return arith::IndexCastOp::create(
      b, loc, i64,
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, slots));
}

/// Replaces `op` with a loom_sgemm call (loom_sgemm_epilogue with
/// `epilogue`); fails (changing nothing) when the output's columns are not
/// contiguous in either orientation, or, with an epilogue, not in C's own.
LogicalResult lowerToCall(linalg::LinalgOp op, loom::cpu::GemmLoops loops,
                          ModuleOp module, Epilogue *epilogue,
                          int64_t threads) {
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  Value a = op.getDpsInputs()[0], b = op.getDpsInputs()[1];
  Value c = op.getDpsInits()[0];
  AffineMap aMap = maps[0], bMap = maps[1], cMap = maps[2];
  // The kernel wants C's N columns contiguous; C^T = B^T A^T swaps roles.
  if (staticStride(c, cMap, loops.n) != 1) {
    if (staticStride(c, cMap, loops.m) != 1 || epilogue)
      return failure();
    std::swap(loops.m, loops.n);
    std::swap(a, b);
    std::swap(aMap, bMap);
  }
  OpBuilder builder(op);
  Location loc = op.getLoc();
  auto i64 = builder.getI64Type();
  auto constant = [&](int64_t v) -> Value {
    return arith::ConstantIntOp::create(builder, loc, i64, v);
  };
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  StridedOperand sa = describe(builder, loc, a, aMap);
  StridedOperand sb = describe(builder, loc, b, bMap);
  StridedOperand sc = describe(builder, loc, c, cMap);
  Value zero = constant(0);
  auto batchStride = [&](StridedOperand &s) {
    return loops.batch < 0 ? zero : s.loopStrides[loops.batch];
  };
  bool zeroInit = op->hasAttr(loom::cpu::kZeroInitAttr);
  SmallVector<Value> args = {
      constant(loops.batch < 0 ? 1 : ranges[loops.batch]),
      constant(ranges[loops.m]),
      constant(ranges[loops.n]),
      constant(ranges[loops.k]),
      sa.address,
      batchStride(sa),
      sa.loopStrides[loops.m],
      sa.loopStrides[loops.k],
      sb.address,
      batchStride(sb),
      sb.loopStrides[loops.k],
      sb.loopStrides[loops.n],
      sc.address,
      batchStride(sc),
      sc.loopStrides[loops.m],
      constant(zeroInit ? 0 : 1)};
  if (!epilogue) {
    args.push_back(constant(threads));
    func::CallOp::create(builder, loc, declareSgemm(module, false), args);
    op->erase();
    return success();
  }
  std::optional<int64_t> cRow = staticStride(c, cMap, loops.m);
  if (!cRow)
    return failure();
  // The epilogue writes its outputs while the kernel still reads A and B:
  // they must be other buffers.
  for (Value out : epilogue->generic.getDpsInits())
    if (rootOf(out) == rootOf(a) || rootOf(out) == rootOf(b))
      return failure();
  // The generic's operands, here (its view of the product comes after the
  // GEMM: a copy of the view is made here).
  DominanceInfo dominance(op->getParentOfType<func::FuncOp>());
  SmallVector<Value> operands;
  for (Value operand : epilogue->generic->getOperands()) {
    Value available = availableAt(builder, operand, op, dominance);
    if (!available)
      return failure(); // leaves at most dead view copies
    operands.push_back(available);
  }
  // The context lives on the stack for the call only.
  auto scope = memref::AllocaScopeOp::create(builder, loc, TypeRange{});
  Block *block = builder.createBlock(&scope.getBodyRegion());
  builder.setInsertionPointToStart(block);
  args.push_back(func::ConstantOp::create(
      builder, loc, epilogueType(builder),
      SymbolRefAttr::get(epilogue->function.getSymNameAttr())));
  args.push_back(buildContext(builder, loc, *epilogue, c, *cRow, operands));
  args.push_back(arith::ConstantIntOp::create(builder, loc, i64, threads));
  func::CallOp::create(builder, loc, declareSgemm(module, true), args);
  memref::AllocaScopeReturnOp::create(builder, loc);
  op->erase();
  return success();
}

struct LoomCpuGemmToCall
    : public loom::cpu::impl::LoomCpuGemmToCallBase<LoomCpuGemmToCall> {
  using LoomCpuGemmToCallBase::LoomCpuGemmToCallBase;
  /// 1. Collect the contractions on buffers that loom_sgemm computes.
  /// 2. Replace each with a call; one that cannot be called (its output
  ///    is strided in both dims) gets its zero fill back, if it had one,
  ///    and stays a loop nest.
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::LinalgOp> ops;
    module.walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics())
        ops.push_back(op);
    });
    // Epilogues: each generic with its GEMMs (one, as GEMMs are no longer
    // split across threads; any number would do). A
    // generic runs as their epilogue only when every one of them writes into
    // the buffer it reads and the kernel can run its body; else it stays.
    // Ids are unique within a function (the pairing pass runs per
    // function): the key is both.
    using Key = std::pair<Operation *, int64_t>;
    auto keyOf = [](Operation *op, IntegerAttr id) {
      return Key(op->getParentOfType<func::FuncOp>(), id.getInt());
    };
    std::map<Key, Epilogue> epilogues;
    std::map<Key, SmallVector<linalg::LinalgOp>> gemmsOf;
    for (linalg::LinalgOp op : ops) {
      if (auto id = op->getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueOfAttr))
        if (auto generic = llvm::dyn_cast<linalg::GenericOp>(*op))
          epilogues[keyOf(op, id)].generic = generic;
      if (auto id = op->getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueAttr))
        gemmsOf[keyOf(op, id)].push_back(op);
    }
    for (auto it = epilogues.begin(); it != epilogues.end();) {
      Epilogue &e = it->second;
      bool ok = e.generic && compilable(e) && gemmsOf.count(it->first);
      if (ok) {
        // The operand that reads the products (recorded on tensors) must
        // view the buffer they all write.
        auto read = e.generic->getAttrOfType<IntegerAttr>(
            loom::cpu::kEpilogueOperandAttr);
        ok = read && read.getInt() >= 0 &&
             read.getInt() < int64_t(e.generic.getNumDpsInputs());
        if (ok) {
          e.productOperand = unsigned(read.getInt());
          Value root = rootOf(e.generic->getOperand(e.productOperand));
          ok = llvm::all_of(gemmsOf[it->first], [&](linalg::LinalgOp gemm) {
            return rootOf(gemm.getDpsInits()[0]) == root;
          });
        }
      }
      if (!ok) {
        if (e.generic)
          e.generic->removeAttr(loom::cpu::kEpilogueOfAttr);
        it = epilogues.erase(it);
        continue;
      }
      ++it;
    }
    std::map<Key, int64_t> lowered;
    for (linalg::LinalgOp op : ops) {
      if (std::optional<loom::cpu::GemmLoops> loops =
              loom::cpu::matchGemm(op)) {
        Epilogue *epilogue = nullptr;
        Key id;
        if (auto attr =
                op->getAttrOfType<IntegerAttr>(loom::cpu::kEpilogueAttr);
            attr && epilogues.count(keyOf(op, attr))) {
          id = keyOf(op, attr);
          epilogue = &epilogues[id];
          if (!epilogue->function) {
            auto parent = op->getParentOfType<func::FuncOp>();
            epilogue->function = buildEpilogueFunction(
                module, *epilogue,
                ("__loom_epilogue_" + parent.getSymName() + "_" +
                 std::to_string(id.second))
                    .str());
          }
        }
        if (succeeded(lowerToCall(op, *loops, module, epilogue, threads))) {
          if (epilogue)
            ++lowered[id];
          continue;
        }
        // This tile cannot take the epilogue (C is not row-major): a plain
        // call, and the generic runs itself afterwards.
        if (epilogue &&
            succeeded(lowerToCall(op, *loops, module, nullptr, threads)))
          continue;
      }
      if (!op->hasAttr(loom::cpu::kZeroInitAttr))
        continue;
      OpBuilder builder(op);
      Value zero = arith::ConstantOp::create(builder, op.getLoc(),
                                             builder.getF32FloatAttr(0.0f));
      linalg::FillOp::create(builder, op.getLoc(), zero, op.getDpsInits()[0]);
      op->removeAttr(loom::cpu::kZeroInitAttr);
    }
    // A generic whose GEMMs all ran it as their epilogue is done; one with a
    // GEMM that could not still runs itself (applying the body again
    // rewrites the same values: its outputs are not its inputs).
    for (auto &[id, e] : epilogues) {
      if (lowered[id] == int64_t(gemmsOf[id].size()))
        e.generic->erase();
      else
        e.generic->removeAttr(loom::cpu::kEpilogueOfAttr);
    }
  }
};

} // namespace
