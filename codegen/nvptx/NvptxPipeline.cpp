//===- NvptxPipeline.cpp - loom IR to PTX kernels and launch plans --------===//

#include "codegen/nvptx/NvptxPipeline.h"
#include "codegen/nvptx/Passes.h"

#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Matchers.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <mutex>

using namespace mlir;

std::string loom::findCudaToolkit(const std::string &preferred) {
  auto hasLibdevice = [](const std::string &dir) {
    return !dir.empty() &&
           llvm::sys::fs::exists(dir + "/nvvm/libdevice/libdevice.10.bc");
  };
  if (hasLibdevice(preferred))
    return preferred;
  if (const char *home = std::getenv("CUDA_HOME"); home && hasLibdevice(home))
    return home;
  if (hasLibdevice("/usr/local/cuda"))
    return "/usr/local/cuda";
  return "";
}

std::string loom::nvptxPipelineText(const NvptxPipelineOptions &options) {
  LinalgStagesOptions front;
  front.bind = options.bind;
  front.autodiff = options.autodiff;
  front.optimizer = options.optimizer;
  // Kernels are per op: layers inline; f32 attention stays for
  // loom-gpu-attention.
  front.outlineLayers = false;
  front.keepAttention = true;
  std::vector<std::string> stages = linalgStages(front);
  // A long full reduction would be one thread: partial sums first.
  stages.push_back("func.func(loom-gpu-split-reductions),canonicalize,cse");
  if (options.stopAfter == "linalg")
    return llvm::join(stages, ",");
  // Each op that starts from a constant fill gets its own (no copies of
  // one filled buffer).
  stages.push_back("func.func(loom-gpu-private-fills)");
  // Buffers: outputs become arguments, each returned buffer its own.
  // (Kept attention ops are unknown to bufferization: they stay on tensors
  // between to_tensor and to_buffer until loom-gpu-attention.)
  stages.push_back("one-shot-bufferize{bufferize-function-boundaries "
                   "allow-return-allocs-from-loops allow-unknown-ops "
                   "unknown-type-conversion=identity-layout-map "
                   "function-boundary-type-conversion=identity-layout-map}");
  stages.push_back("func.func(loom-gpu-attention{tensor-cores=" +
                   options.tensorCores + "})");
  // A training step's parameters and moments are updated in place.
  stages.push_back("loom-drop-updated-results");
  stages.push_back("func.func(loom-distinct-results)");
  stages.push_back("buffer-results-to-out-params{hoist-static-allocs=true "
                   "modify-public-functions=true}");
  stages.push_back("canonicalize,cse");
  // One kernel per contraction (register-tiled) and per loop nest of every
  // other op; the host keeps launches only.
  stages.push_back("loom-gpu-outline-kernels{block-size=" +
                   std::to_string(options.blockSize) +
                   " tensor-cores=" + options.tensorCores + "}");
  stages.push_back("canonicalize,cse");
  if (options.stopAfter == "kernels")
    return llvm::join(stages, ",");
  // Kernels to NVVM: bare pointers (static shapes and offsets live in the
  // code), libdevice for math.
  // PTX ISA 8.0 for sm_80 and sm_90 (what ptxas 12+ and the drivers of
  // those GPUs accept); newer chips get LLVM's default for the chip.
  bool ampereOrHopper = llvm::StringRef(options.arch).starts_with("sm_8") ||
                        llvm::StringRef(options.arch).starts_with("sm_90");
  stages.push_back("nvvm-attach-target{chip=" + options.arch +
                   (ampereOrHopper ? " features=+ptx80" : "") + " O=3}");
  stages.push_back("gpu.module(convert-linalg-to-loops,expand-strided-metadata,"
                   "lower-affine,"
                   "convert-scf-to-cf,loom-gpu-lower-bf16-mma,"
                   "convert-nvgpu-to-nvvm,"
                   "convert-vector-to-llvm,convert-gpu-to-nvvm{"
                   "use-bare-ptr-memref-call-conv=1},convert-index-to-llvm,"
                   "convert-arith-to-llvm,canonicalize,cse,"
                   "reconcile-unrealized-casts)");
  if (options.stopAfter == "nvvm")
    return llvm::join(stages, ",");
  std::string toolkit = findCudaToolkit(options.toolkit);
  stages.push_back("gpu-module-to-binary{format=isa" +
                   (toolkit.empty() ? std::string() : " toolkit=" + toolkit) +
                   "}");
  return llvm::join(stages, ",");
}

void loom::registerNvptxPipeline() {
  static std::once_flag once;
  std::call_once(once, [] {
    loom::registerAllPassesAndPipelines();
    loom::nvptx::registerLoomNvptxPasses();
    PassPipelineRegistration<>(
        "loom-nvptx-pipeline",
        "Lower loom IR with static shapes to PTX kernels (sm_90) and host "
        "launch sequences",
        [](OpPassManager &pm) {
          (void)buildNvptxPipeline(pm, NvptxPipelineOptions());
        });
  });
}

LogicalResult loom::buildNvptxPipeline(OpPassManager &pm,
                                       const NvptxPipelineOptions &options) {
  registerNvptxPipeline();
  std::string error;
  llvm::raw_string_ostream os(error);
  if (failed(parsePassPipeline(nvptxPipelineText(options), pm, os))) {
    llvm::errs() << "loom: internal error: bad NVPTX pipeline: " << error
                 << "\n";
    return failure();
  }
  return success();
}

void loom::registerNvptxDialects(DialectRegistry &registry) {
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerGPUDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
}

//===----------------------------------------------------------------------===//
// Launch plans
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kSlotAlignment = 256;

int64_t bytesOf(MemRefType type) {
  int64_t bits = type.getElementTypeBitWidth();
  return type.getNumElements() * ((bits + 7) / 8);
}

std::string typeName(Type type) {
  std::string text;
  llvm::raw_string_ostream os(text);
  type.print(os);
  return text;
}

/// The launch sequence of one host function.
class PlanBuilder {
public:
  explicit PlanBuilder(func::FuncOp func) : func(func) {}

  llvm::Expected<loom::gpu::Function> build();

private:
  /// The buffer a memref value views (an argument or an allocation).
  Value rootOf(Value v) {
    while (auto view = v.getDefiningOp<ViewLikeOpInterface>())
      v = view.getViewSource();
    return v;
  }
  llvm::Error failAt(Operation *op, const llvm::Twine &message) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << op->getLoc() << ": " << message;
    return llvm::createStringError(text);
  }

  func::FuncOp func;
};

llvm::Expected<loom::gpu::Function> PlanBuilder::build() {
  loom::gpu::Function fn;
  fn.name = func.getSymName().str();
  Block &body = func.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    auto type = llvm::dyn_cast<MemRefType>(arg.getType());
    if (!type || !type.hasStaticShape())
      return llvm::createStringError("function '" + fn.name + "': argument " +
                                     std::to_string(arg.getArgNumber()) +
                                     " is not a statically shaped buffer");
    loom::gpu::Argument a;
    if (auto name =
            func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "loom.name"))
      a.name = name.str();
    else
      a.name = "arg" + std::to_string(arg.getArgNumber());
    a.dtype = typeName(type.getElementType());
    a.shape.assign(type.getShape().begin(), type.getShape().end());
    a.bytes = bytesOf(type);
    // Updated in place (`loom-drop-updated-results`): read, then written.
    a.updated = a.output =
        bool(func.getArgAttr(arg.getArgNumber(), "loom.updated"));
    fn.args.push_back(std::move(a));
  }

  // The last op (by position) that uses each allocation, through views.
  llvm::DenseMap<Operation *, unsigned> position;
  llvm::DenseMap<Value, unsigned> lastUse;
  unsigned index = 0;
  for (Operation &op : body) {
    position[&op] = index++;
    if (auto launch = llvm::dyn_cast<gpu::LaunchFuncOp>(op))
      for (Value v : launch.getKernelOperands())
        lastUse[rootOf(v)] = position[&op];
  }

  // Workspace slots: first fit among the slots of allocations still live.
  struct Slot {
    int64_t offset, size;
    unsigned last;
  };
  std::vector<Slot> live;
  llvm::DenseMap<Value, int64_t> slotOf;
  auto allocate = [&](int64_t size, unsigned at) {
    llvm::erase_if(live, [&](const Slot &s) { return s.last < at; });
    llvm::sort(
        live, [](const Slot &a, const Slot &b) { return a.offset < b.offset; });
    int64_t offset = 0;
    for (const Slot &s : live) {
      if (offset + size <= s.offset)
        break;
      offset = std::max(
          offset, int64_t(llvm::alignTo(s.offset + s.size, kSlotAlignment)));
    }
    fn.workspaceBytes =
        std::max(fn.workspaceBytes,
                 int64_t(llvm::alignTo(offset + size, kSlotAlignment)));
    return offset;
  };

  for (Operation &op : body) {
    unsigned at = position[&op];
    if (auto alloc = llvm::dyn_cast<memref::AllocOp>(op)) {
      auto type = alloc.getType();
      if (!type.hasStaticShape() || !type.getLayout().isIdentity())
        return failAt(&op, "an allocation of dynamic shape or layout; the "
                           "GPU plan expects static buffers");
      auto it = lastUse.find(alloc.getResult());
      if (it == lastUse.end())
        continue; // never read or written by a kernel
      int64_t offset = allocate(std::max<int64_t>(bytesOf(type), 1), at);
      live.push_back({offset, bytesOf(type), it->second});
      slotOf[alloc.getResult()] = offset;
      continue;
    }
    if (auto launch = llvm::dyn_cast<gpu::LaunchFuncOp>(op)) {
      loom::gpu::Launch l;
      l.kernel = launch.getKernelName().str();
      auto constant = [&](Value v, int64_t &out) {
        APInt value;
        if (!matchPattern(v, m_ConstantInt(&value)))
          return false;
        out = value.getSExtValue();
        return true;
      };
      gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
      gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
      if (!constant(grid.x, l.grid[0]) || !constant(grid.y, l.grid[1]) ||
          !constant(grid.z, l.grid[2]) || !constant(block.x, l.block[0]) ||
          !constant(block.y, l.block[1]) || !constant(block.z, l.block[2]))
        return failAt(&op, "a launch with a grid or block size that is not "
                           "a constant");
      if (Value shared = launch.getDynamicSharedMemorySize())
        if (!constant(shared, l.sharedBytes))
          return failAt(&op, "dynamic shared memory that is not a constant");
      auto writes = launch->getAttrOfType<DenseBoolArrayAttr>("loom.writes");
      auto offsets =
          launch->getAttrOfType<DenseI64ArrayAttr>("loom.arg_offsets");
      for (auto [i, v] : llvm::enumerate(launch.getKernelOperands())) {
        if (!llvm::isa<MemRefType>(v.getType()))
          return failAt(&op, "a kernel argument that is not a buffer");
        Value root = rootOf(v);
        loom::gpu::BufferRef ref;
        // Elements from the buffer's start that the outliner moved out of
        // the kernel's type into the address.
        int64_t shift = 0;
        if (offsets && int64_t(i) < offsets.size())
          shift =
              offsets[i] *
              ((llvm::cast<MemRefType>(v.getType()).getElementTypeBitWidth() +
                7) /
               8);
        if (auto arg = llvm::dyn_cast<BlockArgument>(root);
            arg && arg.getOwner() == &body) {
          ref.kind = loom::gpu::BufferRef::Kind::Argument;
          ref.index = arg.getArgNumber();
          ref.offset = shift;
          // Written arguments are the function's outputs (copied back).
          if (!writes || int64_t(i) >= writes.size() || writes[i])
            fn.args[ref.index].output = true;
        } else if (auto slot = slotOf.find(root); slot != slotOf.end()) {
          ref.kind = loom::gpu::BufferRef::Kind::Workspace;
          ref.offset = slot->second + shift;
        } else {
          return failAt(&op, "a kernel argument that views neither an "
                             "argument nor an allocation of the function");
        }
        l.args.push_back(ref);
      }
      fn.launches.push_back(std::move(l));
      continue;
    }
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      if (ret.getNumOperands() != 0)
        return failAt(&op, "a function that returns values; the GPU plan "
                           "expects outputs as arguments");
      continue;
    }
    if (llvm::isa<memref::DeallocOp, ViewLikeOpInterface>(op) ||
        op.hasTrait<OpTrait::ConstantLike>())
      continue;
    return failAt(&op, "'" + op.getName().getStringRef() +
                           "' left on the host; the GPU plan has launches, "
                           "buffers and views only");
  }
  return fn;
}

} // namespace

llvm::Expected<loom::gpu::Program>
loom::extractGpuProgram(ModuleOp module, llvm::StringRef arch,
                        llvm::StringRef bindings, bool requirePtx) {
  gpu::Program program;
  program.arch = arch.str();
  program.bindings = bindings.str();
  for (auto binary : module.getOps<mlir::gpu::BinaryOp>())
    for (Attribute attr : binary.getObjects()) {
      auto object = llvm::cast<mlir::gpu::ObjectAttr>(attr);
      program.ptx += object.getObject().getValue().str();
    }
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal() || !func.isPublic())
      continue;
    auto fn = PlanBuilder(func).build();
    if (!fn)
      return fn.takeError();
    program.functions.push_back(std::move(*fn));
  }
  bool launches = llvm::any_of(program.functions, [](const gpu::Function &f) {
    return !f.launches.empty();
  });
  if (requirePtx && launches && program.ptx.empty())
    return llvm::createStringError(
        "the module has launches but no PTX (expected the whole NVPTX "
        "pipeline, through gpu-module-to-binary)");
  return program;
}
