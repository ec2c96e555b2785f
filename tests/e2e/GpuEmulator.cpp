//===- GpuEmulator.cpp - GPU launch plans run on the CPU ------------------===//

#include "tests/e2e/GpuEmulator.h"

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "driver/Session.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>

using namespace mlir;

namespace {

/// `kernel` as `func.func @name(args..., dims: memref<2xi64>)` that runs
/// its dims[0] blocks of dims[1] threads in order.
LogicalResult emulateKernel(OpBuilder &b, gpu::GPUFuncOp kernel) {
  Location loc = kernel.getLoc();
  SmallVector<Type> types(kernel.getArgumentTypes());
  types.push_back(MemRefType::get({2}, b.getI64Type()));
  auto func = func::FuncOp::create(b, loc, kernel.getName(),
                                   b.getFunctionType(types, {}));
  Block *entry = func.addEntryBlock();
  OpBuilder fb = OpBuilder::atBlockBegin(entry);
  auto dim = [&](int64_t i) -> Value {
    Value v = memref::LoadOp::create(
        fb, loc, entry->getArguments().back(),
        ValueRange{arith::ConstantIndexOp::create(fb, loc, i)});
    return arith::IndexCastOp::create(fb, loc, fb.getIndexType(), v);
  };
  Value blocks = dim(0), threads = dim(1);
  Value zero = arith::ConstantIndexOp::create(fb, loc, 0);
  Value one = arith::ConstantIndexOp::create(fb, loc, 1);
  auto blockLoop = scf::ForOp::create(fb, loc, zero, blocks, one);
  fb.setInsertionPointToStart(blockLoop.getBody());
  auto threadLoop = scf::ForOp::create(fb, loc, zero, threads, one);
  fb.setInsertionPointToStart(threadLoop.getBody());
  OpBuilder tail = OpBuilder::atBlockEnd(entry);
  func::ReturnOp::create(tail, loc);

  IRMapping map;
  for (auto [from, to] :
       llvm::zip(kernel.getArguments(), entry->getArguments()))
    map.map(from, to);
  if (!kernel.getBody().hasOneBlock())
    return kernel.emitOpError("has several blocks; the emulator runs "
                              "structured kernels");
  for (Operation &op : kernel.getBody().front()) {
    if (llvm::isa<gpu::ReturnOp>(op))
      continue;
    auto dimOf = [](Operation &o) {
      if (auto id = llvm::dyn_cast<gpu::BlockIdOp>(o))
        return std::optional(std::pair(0, id.getDimension()));
      if (auto id = llvm::dyn_cast<gpu::ThreadIdOp>(o))
        return std::optional(std::pair(1, id.getDimension()));
      if (auto id = llvm::dyn_cast<gpu::BlockDimOp>(o))
        return std::optional(std::pair(2, id.getDimension()));
      return std::optional<std::pair<int, gpu::Dimension>>();
    };
    if (auto id = dimOf(op)) {
      if (id->second != gpu::Dimension::x)
        return op.emitOpError("uses a y or z index; the emulator runs 1-D "
                              "grids");
      Value v = id->first == 0   ? blockLoop.getInductionVar()
                : id->first == 1 ? threadLoop.getInductionVar()
                                 : threads;
      map.map(op.getResult(0), v);
      continue;
    }
    bool nested = false;
    op.walk([&](Operation *inner) {
      nested |= inner != &op &&
                (dimOf(*inner) ||
                 inner->getDialect() ==
                     op.getContext()->getLoadedDialect<gpu::GPUDialect>());
    });
    if (nested ||
        op.getDialect() == op.getContext()->getLoadedDialect<gpu::GPUDialect>())
      return op.emitOpError("is GPU-specific; the emulator cannot run it");
    fb.clone(op, map);
  }
  return success();
}

} // namespace

llvm::Expected<std::unique_ptr<loom::e2e::GpuEmulator>>
loom::e2e::GpuEmulator::create(ModuleOp module) {
  auto plan = extractGpuProgram(module, "emulated", "", /*requirePtx=*/false);
  if (!plan)
    return plan.takeError();
  std::unique_ptr<GpuEmulator> emulator(new GpuEmulator());
  emulator->plan = std::move(*plan);

  loom::driver::DiagnosticCollector collected(module.getContext());
  OwningOpRef<ModuleOp> host(ModuleOp::create(module.getLoc()));
  OpBuilder b = OpBuilder::atBlockBegin(host->getBody());
  for (auto kernels : module.getOps<mlir::gpu::GPUModuleOp>())
    for (Operation &op : kernels.getBody()->getOperations()) {
      if (auto kernel = llvm::dyn_cast<mlir::gpu::GPUFuncOp>(op)) {
        if (failed(emulateKernel(b, kernel)))
          return llvm::createStringError("cannot emulate: " + collected.text());
      } else if (llvm::isa<memref::GlobalOp>(op)) {
        b.clone(op);
      }
    }
  PassManager pm(module.getContext());
  registerCpuPipeline();
  if (failed(parsePassPipeline(
          "func.func(convert-linalg-to-loops),"
          "expand-strided-metadata,lower-affine,finalize-memref-to-llvm,"
          "convert-scf-to-cf,convert-math-to-llvm,convert-math-to-libm,"
          "convert-arith-to-llvm,convert-index-to-llvm,convert-cf-to-llvm,"
          "convert-func-to-llvm{use-bare-ptr-memref-call-conv=1},"
          "reconcile-unrealized-casts",
          pm, llvm::errs())) ||
      failed(pm.run(*host)))
    return llvm::createStringError("lowering the emulated kernels failed:\n" +
                                   collected.text());
  if (std::getenv("LOOM_DUMP_EMULATED"))
    host->print(llvm::errs());
  auto jit = JitModule::create(*host);
  if (!jit)
    return llvm::createStringError(llvm::toString(jit.takeError()) + "\n" +
                                   collected.text());
  emulator->jit = std::move(*jit);
  return emulator;
}

loom::Status loom::e2e::GpuEmulator::run(const std::string &name,
                                         const std::vector<void *> &pointers) {
  const gpu::Function *fn = plan.find(name);
  if (!fn)
    return Status::error("no GPU function '" + name + "'");
  if (pointers.size() != fn->args.size())
    return Status::error("wrong number of buffers");
  // Device memory: copies of the arguments, and garbage where the device
  // would have whatever was there before.
  std::vector<std::vector<uint8_t>> device;
  for (size_t i = 0; i < fn->args.size(); ++i) {
    device.emplace_back(std::max<int64_t>(fn->args[i].bytes, 4), 0xFF);
    if (!fn->args[i].output)
      std::memcpy(device.back().data(), pointers[i], fn->args[i].bytes);
  }
  std::vector<uint8_t> workspace(std::max<int64_t>(fn->workspaceBytes, 4),
                                 0xFF);
  for (const gpu::Launch &launch : fn->launches) {
    std::vector<void *> args;
    for (const gpu::BufferRef &ref : launch.args) {
      uint8_t *base = ref.kind == gpu::BufferRef::Kind::Argument
                          ? device[ref.index].data()
                          : workspace.data();
      args.push_back(base + ref.offset);
    }
    int64_t dims[2] = {launch.grid[0] * launch.grid[1] * launch.grid[2],
                       launch.block[0]};
    if (launch.grid[1] != 1 || launch.grid[2] != 1 || launch.block[1] != 1 ||
        launch.block[2] != 1)
      return Status::error("the emulator runs 1-D launches only");
    args.push_back(dims);
    if (llvm::Error err = jit->call(launch.kernel, args))
      return Status::error(llvm::toString(std::move(err)));
  }
  for (size_t i = 0; i < fn->args.size(); ++i)
    if (fn->args[i].output)
      std::memcpy(pointers[i], device[i].data(), fn->args[i].bytes);
  return Status();
}
