//===- GpuEmulator.cpp - GPU launch plans run on the CPU ------------------===//

#include "tests/e2e/GpuEmulator.h"

#include "codegen/cpu/CpuPipeline.h"
#include "codegen/nvptx/NvptxPipeline.h"
#include "driver/Session.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/Support/raw_ostream.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>

using namespace mlir;

namespace {

/// True when `kernel`'s threads synchronize (a barrier, a warp shuffle or
/// a warp's matrix product):
/// it then runs as one fiber per thread (below), not as a loop.
bool synchronizes(gpu::GPUFuncOp kernel) {
  return kernel
      .walk([](Operation *op) {
        return llvm::isa<gpu::BarrierOp, gpu::ShuffleOp, nvgpu::MmaSyncOp>(op)
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

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

/// The emulator's runtime (defined below, called by the thread functions).
constexpr llvm::StringLiteral kBarrier = "loom_emu_barrier";
constexpr llvm::StringLiteral kShuffleF32 = "loom_emu_shuffle_f32";
constexpr llvm::StringLiteral kShuffleI32 = "loom_emu_shuffle_i32";
constexpr llvm::StringLiteral kShuffleValid = "loom_emu_shuffle_valid";
constexpr llvm::StringLiteral kMmaTf32 = "loom_emu_mma_m16n8k8_tf32";
constexpr llvm::StringLiteral kMmaBf16 = "loom_emu_mma_m16n8k16_bf16";

/// A synchronizing `kernel` (or one with shared memory) as `func.func
/// @name(args..., shared..., ids: memref<3xi64>)`: the code of ONE thread
/// (block ids[0], thread ids[1] of ids[2]); barriers, shuffles and matrix
/// products call into the emulator's runtime.
/// `sharedBytes` gets the size of each shared buffer it takes (after the
/// kernel's arguments).
LogicalResult emulateThread(OpBuilder &b, gpu::GPUFuncOp kernel,
                            std::vector<int64_t> &sharedBytes) {
  Location loc = kernel.getLoc();
  if (!kernel.getBody().hasOneBlock())
    return kernel.emitOpError("has several blocks; the emulator runs "
                              "structured kernels");
  if (kernel.getNumPrivateAttributions())
    return kernel.emitOpError("has private memory attributions; the "
                              "emulator provides shared memory only");
  MLIRContext *context = b.getContext();
  ModuleOp host = llvm::cast<ModuleOp>(b.getBlock()->getParentOp());
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  auto declare = [&](StringRef name, TypeRange args, TypeRange results) {
    if (host.lookupSymbol(name))
      return;
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(host.getBody());
    func::FuncOp::create(b, loc, name, b.getFunctionType(args, results))
        .setPrivate();
  };
  declare(kBarrier, {}, {});
  declare(kShuffleF32, {f32, i32, i32, i32}, {f32});
  declare(kShuffleI32, {i32, i32, i32, i32}, {i32});
  declare(kShuffleValid, {i32, i32, i32}, {b.getI1Type()});
  auto fragment = MemRefType::get({4}, f32);
  declare(kMmaTf32,
          {f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, fragment}, {});
  {
    SmallVector<Type> bf16Args(16, f32);
    bf16Args.push_back(fragment);
    declare(kMmaBf16, bf16Args, {});
  }

  // Arguments: the kernel's, one buffer per workgroup attribution (shared
  // by the block's threads), the ids.
  SmallVector<Type> types(kernel.getArgumentTypes());
  for (BlockArgument shared : kernel.getWorkgroupAttributions()) {
    auto type = llvm::cast<MemRefType>(shared.getType());
    if (!type.hasStaticShape() || !type.getLayout().isIdentity())
      return kernel.emitOpError("has shared memory of dynamic shape or "
                                "layout; the emulator provides static buffers");
    types.push_back(MemRefType::get(type.getShape(), type.getElementType()));
    sharedBytes.push_back(type.getNumElements() *
                          ((type.getElementTypeBitWidth() + 7) / 8));
  }
  types.push_back(MemRefType::get({3}, b.getI64Type()));
  auto func = func::FuncOp::create(b, loc, kernel.getName(),
                                   b.getFunctionType(types, {}));
  Block *entry = func.addEntryBlock();
  OpBuilder fb = OpBuilder::atBlockBegin(entry);
  Value ids[3];
  for (int64_t i = 0; i < 3; ++i) {
    Value v = memref::LoadOp::create(
        fb, loc, entry->getArguments().back(),
        ValueRange{arith::ConstantIndexOp::create(fb, loc, i)});
    ids[i] = arith::IndexCastOp::create(fb, loc, fb.getIndexType(), v);
  }
  IRMapping map;
  // (The body's block arguments: the kernel's arguments, then its
  // attributions, in the order of `types`.)
  for (auto [from, to] : llvm::zip(kernel.getBody().front().getArguments(),
                                   entry->getArguments()))
    map.map(from, to);
  for (Operation &op : kernel.getBody().front().without_terminator())
    fb.clone(op, map);
  func::ReturnOp::create(fb, loc);

  // The GPU ops of the copy, now of one thread.
  SmallVector<Operation *> gpuOps;
  func.walk([&](Operation *op) {
    if (op->getDialect() == context->getLoadedDialect<gpu::GPUDialect>() ||
        op->getDialect() == context->getLoadedDialect<nvgpu::NVGPUDialect>())
      gpuOps.push_back(op);
  });
  IRRewriter rewriter(context);
  // The result fragment of a matrix product (one per thread function).
  Value product;
  for (Operation *op : gpuOps) {
    rewriter.setInsertionPoint(op);
    if (auto mma = llvm::dyn_cast<nvgpu::MmaSyncOp>(op)) {
      auto shape = mma.getMmaShapeAsArray();
      Type bf16 = b.getBF16Type();
      bool tf32 = shape == std::array<int64_t, 3>{16, 8, 8} &&
                  mma.getTf32Enabled() &&
                  mma.getMatrixA().getType() == VectorType::get({4, 1}, f32) &&
                  mma.getMatrixB().getType() == VectorType::get({2, 1}, f32);
      bool bf16Product =
          shape == std::array<int64_t, 3>{16, 8, 16} &&
          mma.getMatrixA().getType() == VectorType::get({4, 2}, bf16) &&
          mma.getMatrixB().getType() == VectorType::get({2, 2}, bf16);
      if ((!tf32 && !bf16Product) ||
          mma.getRes().getType() != VectorType::get({2, 2}, f32))
        return op->emitOpError("is neither an f32 m16n8k8 tf32 nor an "
                               "m16n8k16 bf16 product into f32; the "
                               "emulator runs those");
      if (!product) {
        OpBuilder::InsertionGuard guard(rewriter);
        rewriter.setInsertionPointToStart(entry);
        product = memref::AllocaOp::create(rewriter, loc, fragment);
      }
      Location at = op->getLoc();
      SmallVector<Value> args;
      auto extract = [&](Value v, int64_t i, int64_t j) {
        args.push_back(vector::ExtractOp::create(rewriter, at, v,
                                                 ArrayRef<int64_t>{i, j}));
      };
      // (bf16 operands widened exactly to f32.)
      auto operand = [&](Value v, int64_t rows) {
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < (tf32 ? 1 : 2); ++j) {
            extract(v, i, j);
            if (!tf32)
              args.back() =
                  arith::ExtFOp::create(rewriter, at, f32, args.back());
          }
      };
      operand(mma.getMatrixA(), 4);
      operand(mma.getMatrixB(), 2);
      for (int64_t i = 0; i < 4; ++i)
        extract(mma.getMatrixC(), i / 2, i % 2);
      args.push_back(product);
      func::CallOp::create(rewriter, at, tf32 ? kMmaTf32 : kMmaBf16,
                           TypeRange{}, args);
      SmallVector<Value> d;
      for (int64_t i = 0; i < 4; ++i)
        d.push_back(memref::LoadOp::create(
            rewriter, at, product,
            ValueRange{arith::ConstantIndexOp::create(rewriter, at, i)}));
      rewriter.replaceOp(op, vector::FromElementsOp::create(
                                 rewriter, at, mma.getRes().getType(), d));
      continue;
    }
    std::optional<int> which;
    gpu::Dimension dim = gpu::Dimension::x;
    if (auto id = llvm::dyn_cast<gpu::BlockIdOp>(op))
      which = 0, dim = id.getDimension();
    else if (auto id = llvm::dyn_cast<gpu::ThreadIdOp>(op))
      which = 1, dim = id.getDimension();
    else if (auto id = llvm::dyn_cast<gpu::BlockDimOp>(op))
      which = 2, dim = id.getDimension();
    if (which) {
      if (dim != gpu::Dimension::x)
        return op->emitOpError("uses a y or z index; the emulator runs 1-D "
                               "grids");
      rewriter.replaceOp(op, ids[*which]);
      continue;
    }
    if (llvm::isa<gpu::BarrierOp>(op)) {
      func::CallOp::create(rewriter, op->getLoc(), kBarrier, TypeRange{});
      rewriter.eraseOp(op);
      continue;
    }
    if (auto shuffle = llvm::dyn_cast<gpu::ShuffleOp>(op)) {
      Type type = shuffle.getValue().getType();
      if (type != f32 && type != i32)
        return op->emitOpError("shuffles a ")
               << type << "; the emulator shuffles f32 and i32";
      Value mode = arith::ConstantIntOp::create(rewriter, op->getLoc(), i32,
                                                int64_t(shuffle.getMode()));
      auto value = func::CallOp::create(
          rewriter, op->getLoc(), type == f32 ? kShuffleF32 : kShuffleI32,
          TypeRange{type},
          ValueRange{shuffle.getValue(), shuffle.getOffset(),
                     shuffle.getWidth(), mode});
      auto valid = func::CallOp::create(
          rewriter, op->getLoc(), kShuffleValid,
          TypeRange{rewriter.getI1Type()},
          ValueRange{shuffle.getOffset(), shuffle.getWidth(), mode});
      rewriter.replaceOp(op, {value.getResult(0), valid.getResult(0)});
      continue;
    }
    return op->emitOpError("is GPU-specific; the emulator cannot run it");
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Fibers: the threads of one block
//===----------------------------------------------------------------------===//

/// A suspended fiber (or the scheduler): where to resume it. On x86-64 a
/// switch saves the callee-saved registers on the current stack and loads
/// the other's (no system call: ucontext's swapcontext saves the signal
/// mask, a system call per switch, which made the emulated tests 3x
/// slower); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void loom_emu_switch(void **save, void *to);
asm(R"(
  .text
  .p2align 4
  .globl loom_emu_switch
  .hidden loom_emu_switch
  .type loom_emu_switch, @function
loom_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size loom_emu_switch, .-loom_emu_switch
)");
struct Context {
  void *sp = nullptr;
  /// A fresh context that runs `entry` (which must never return) on
  /// [stack, stack + size).
  void start(char *stack, size_t size, void (*entry)()) {
    auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15);
    auto *slots = reinterpret_cast<void **>(top) - 8;
    std::memset(slots, 0, 8 * sizeof(void *));  // r15 .. rbp, then 0s
    slots[6] = reinterpret_cast<void *>(entry); // `ret` goes there
    sp = slots; // 16-aligned: at entry rsp = 8 mod 16, as after a call
  }
  void switchTo(Context &to) { loom_emu_switch(&sp, to.sp); }
};
#else
struct Context {
  ucontext_t context;
  void start(char *stack, size_t size, void (*entry)()) {
    getcontext(&context);
    context.uc_stack.ss_sp = stack;
    context.uc_stack.ss_size = size;
    context.uc_link = nullptr;
    makecontext(&context, entry, 0);
  }
  void switchTo(Context &to) { swapcontext(&context, &to.context); }
};
#endif

/// One block of a synchronizing kernel in flight: a fiber per thread, run
/// in turn until each finishes or waits at a barrier; a barrier lets its
/// threads go when all of its group (the block, or a warp for a shuffle
/// or a matrix product) have reached it.
struct BlockRun {
  struct Fiber {
    Context context;
    int64_t ids[3];
    std::vector<void *> storage, args;
    bool done = false;
    int waitGroup = -1; // group whose generation it waits to move on
    uint64_t waitGeneration = 0;
  };
  void (*fn)(void **) = nullptr;
  std::vector<Fiber> fibers;
  Context scheduler;
  int current = 0;
  // Group 0: the block; group 1 + w: warp w.
  std::vector<int> arrived, size;
  std::vector<uint64_t> generation;
  std::vector<uint32_t> slots;                  // a shuffle's values, by thread
  std::vector<std::array<float, 16>> fragments; // a product's, by thread
  /// A warp's product D (16 x 8), made once per product by its first lane
  /// past the barrier: the warp's generation then.
  std::vector<std::array<float, 128>> products;
  std::vector<uint64_t> productGeneration;

  Fiber &self() { return fibers[current]; }
  int64_t threadId() { return self().ids[1]; }
  /// Waits until every thread of `group` has arrived.
  void wait(int group) {
    uint64_t gen = generation[group];
    if (++arrived[group] == size[group]) {
      arrived[group] = 0;
      ++generation[group];
      return;
    }
    Fiber &f = self();
    f.waitGroup = group;
    f.waitGeneration = gen;
    f.context.switchTo(scheduler);
  }
};

thread_local BlockRun *active = nullptr;

/// Fiber stacks, kept for the next launch (per OS thread).
constexpr size_t kStack = 256 * 1024;
thread_local std::vector<std::unique_ptr<char[]>> stacks;

[[noreturn]] void fiberMain() {
  BlockRun &run = *active;
  BlockRun::Fiber &f = run.self();
  run.fn(f.args.data());
  f.done = true;
  f.context.switchTo(run.scheduler);
  std::abort(); // (a finished fiber is never resumed)
}

/// Where lane `lane` of a `width`-lane group reads from; -1 when out of
/// the group (the value is then the lane's own and `valid` false).
int64_t shuffleSource(int64_t lane, int32_t offset, int32_t width,
                      int32_t mode) {
  auto kind = gpu::ShuffleMode(mode);
  int64_t src = kind == gpu::ShuffleMode::XOR    ? lane ^ offset
                : kind == gpu::ShuffleMode::DOWN ? lane + offset
                : kind == gpu::ShuffleMode::UP   ? lane - offset
                                                 : int64_t(offset); // IDX
  return src >= 0 && src < width ? src : -1;
}

uint32_t shuffle(uint32_t bits, int32_t offset, int32_t width, int32_t mode) {
  BlockRun &run = *active;
  int64_t tid = run.threadId();
  int64_t warp = tid / 32, lane = tid % 32;
  run.slots[tid] = bits;
  run.wait(1 + int(warp));
  int64_t src = shuffleSource(lane, offset, width, mode);
  if (src >= 0 && warp * 32 + src < int64_t(run.slots.size()))
    bits = run.slots[warp * 32 + src];
  run.wait(1 + int(warp)); // (before anyone writes the slots again)
  return bits;
}

/// The calling warp's product D = A B + C (16 x 8, depth K): each lane
/// hands in its fragment (C's four values from index CAt); once all 32
/// have, the first lane through places A and B (`place(fragment, g, t, A,
/// B)` for lane (g, t) = (lane / 4, lane % 4)) and C, and computes D; each
/// lane takes D at its accumulator's places (rows g, g + 8, columns 2t,
/// 2t + 1).
template <int K, int CAt, typename Place>
void warpProduct(const std::array<float, 16> &fragment, float *d, Place place) {
  BlockRun &run = *active;
  int64_t tid = run.threadId(), warp = tid / 32;
  run.fragments[tid] = fragment;
  run.wait(1 + int(warp));
  std::array<float, 128> &D = run.products[warp];
  if (run.productGeneration[warp] != run.generation[1 + warp]) {
    run.productGeneration[warp] = run.generation[1 + warp];
    float A[16][K], B[K][8], C[16][8];
    for (int lane = 0; lane < 32; ++lane) {
      const std::array<float, 16> &f = run.fragments[warp * 32 + lane];
      int g = lane / 4, t = lane % 4;
      place(f, g, t, A, B);
      C[g][2 * t] = f[CAt];
      C[g][2 * t + 1] = f[CAt + 1];
      C[g + 8][2 * t] = f[CAt + 2];
      C[g + 8][2 * t + 1] = f[CAt + 3];
    }
    for (int row = 0; row < 16; ++row)
      for (int col = 0; col < 8; ++col) {
        float sum = C[row][col];
        for (int k = 0; k < K; ++k)
          sum += A[row][k] * B[k][col];
        D[row * 8 + col] = sum;
      }
  }
  int lane = int(tid % 32), g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i)
    d[i] = D[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2];
  run.wait(1 + int(warp)); // (before anyone writes the fragments again)
}

} // namespace

extern "C" {
// Called by the emulated thread functions (found in this executable by the
// JIT: the test is linked with its symbols exported).
__attribute__((visibility("default"))) void loom_emu_barrier() {
  active->wait(0);
}
__attribute__((visibility("default"))) float
loom_emu_shuffle_f32(float value, int32_t offset, int32_t width, int32_t mode) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits = shuffle(bits, offset, width, mode);
  std::memcpy(&value, &bits, 4);
  return value;
}
__attribute__((visibility("default"))) int32_t
loom_emu_shuffle_i32(int32_t value, int32_t offset, int32_t width,
                     int32_t mode) {
  return int32_t(shuffle(uint32_t(value), offset, width, mode));
}
/// mma.sync.m16n8k8.row.col.f32.tf32.tf32.f32 of the calling warp: lane
/// (g = lane / 4, t = lane % 4) holds A(g, t), A(g + 8, t), A(g, t + 4),
/// A(g + 8, t + 4), B(t, g), B(t + 4, g) and C(g, 2t), C(g, 2t + 1),
/// C(g + 8, 2t), C(g + 8, 2t + 1), and gets D = A B + C at C's places.
/// tf32 operands: the low 13 bits of each f32 are ignored.
__attribute__((visibility("default"))) void
loom_emu_mma_m16n8k8_tf32(float a0, float a1, float a2, float a3, float b0,
                          float b1, float c0, float c1, float c2, float c3,
                          float *d) {
  auto tf32 = [](float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    bits &= 0xFFFFE000u;
    std::memcpy(&x, &bits, 4);
    return x;
  };
  warpProduct<8, 6>({a0, a1, a2, a3, b0, b1, c0, c1, c2, c3}, d,
                    [&](const std::array<float, 16> &f, int g, int t,
                        float(&A)[16][8], float(&B)[8][8]) {
                      A[g][t] = tf32(f[0]);
                      A[g + 8][t] = tf32(f[1]);
                      A[g][t + 4] = tf32(f[2]);
                      A[g + 8][t + 4] = tf32(f[3]);
                      B[t][g] = tf32(f[4]);
                      B[t + 4][g] = tf32(f[5]);
                    });
}
/// mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32 of the calling warp (the
/// operands widened to f32): lane (g = lane / 4, t = lane % 4) holds
/// A(g, 2t), A(g, 2t + 1), A(g + 8, 2t), A(g + 8, 2t + 1), then the same
/// at columns 2t + 8, 2t + 9; B(2t, g), B(2t + 1, g), B(2t + 8, g),
/// B(2t + 9, g); C as for tf32; gets D = A B + C at C's places (products
/// of bf16 values are exact in f32).
__attribute__((visibility("default"))) void
loom_emu_mma_m16n8k16_bf16(float a0, float a1, float a2, float a3, float a4,
                           float a5, float a6, float a7, float b0, float b1,
                           float b2, float b3, float c0, float c1, float c2,
                           float c3, float *d) {
  warpProduct<16, 12>(
      {a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, c0, c1, c2, c3}, d,
      [](const std::array<float, 16> &f, int g, int t, float(&A)[16][16],
         float(&B)[16][8]) {
        for (int half = 0; half < 2; ++half)
          for (int e = 0; e < 2; ++e) {
            A[g][2 * t + 8 * half + e] = f[4 * half + e];
            A[g + 8][2 * t + 8 * half + e] = f[4 * half + 2 + e];
            B[2 * t + 8 * half + e][g] = f[8 + 2 * half + e];
          }
      });
}
__attribute__((visibility("default"))) bool
loom_emu_shuffle_valid(int32_t offset, int32_t width, int32_t mode) {
  int64_t tid = active->threadId();
  int64_t src = shuffleSource(tid % 32, offset, width, mode);
  return src >= 0 && (tid / 32) * 32 + src < int64_t(active->slots.size());
}
}

namespace {

/// Runs `blocks` blocks of `threads` threads of the thread function `fn`,
/// each block with its own shared buffers of `sharedBytes` (garbage at
/// its start, as on a device).
loom::Status runFibers(void (*fn)(void **), const std::vector<void *> &args,
                       const std::vector<int64_t> &sharedBytes, int64_t blocks,
                       int64_t threads, const std::string &kernel) {
  std::vector<std::vector<uint8_t>> shared;
  std::vector<void *> withShared = args;
  for (int64_t bytes : sharedBytes) {
    shared.emplace_back(std::max<int64_t>(bytes, 4));
    withShared.push_back(shared.back().data());
  }
  BlockRun run;
  run.fn = fn;
  run.fibers.resize(threads);
  run.slots.assign(threads, 0);
  run.fragments.assign(threads, {});
  int warps = int((threads + 31) / 32);
  run.products.assign(warps, {});
  run.productGeneration.assign(warps, ~uint64_t(0));
  run.size.push_back(int(threads));
  for (int w = 0; w < warps; ++w)
    run.size.push_back(int(std::min<int64_t>(32, threads - 32 * w)));
  while (int64_t(stacks.size()) < threads)
    stacks.emplace_back(new char[kStack]);
  BlockRun *outer = active;
  active = &run;
  loom::Status status;
  for (int64_t block = 0; block < blocks && status.ok(); ++block) {
    run.arrived.assign(run.size.size(), 0);
    run.generation.assign(run.size.size(), 0);
    for (std::vector<uint8_t> &buffer : shared)
      std::fill(buffer.begin(), buffer.end(), 0xFF);
    for (int64_t t = 0; t < threads; ++t) {
      BlockRun::Fiber &f = run.fibers[t];
      f.ids[0] = block;
      f.ids[1] = t;
      f.ids[2] = threads;
      f.storage = withShared;
      f.storage.push_back(f.ids);
      f.args.clear();
      for (void *&p : f.storage)
        f.args.push_back(&p);
      f.done = false;
      f.waitGroup = -1;
      f.context.start(stacks[t].get(), kStack, fiberMain);
    }
    for (int64_t left = threads; left > 0;) {
      bool progress = false;
      for (int64_t t = 0; t < threads; ++t) {
        BlockRun::Fiber &f = run.fibers[t];
        if (f.done || (f.waitGroup >= 0 &&
                       run.generation[f.waitGroup] == f.waitGeneration))
          continue;
        f.waitGroup = -1;
        run.current = int(t);
        run.scheduler.switchTo(f.context);
        progress = true;
        if (f.done)
          --left;
      }
      if (!progress) {
        status = loom::Status::error(
            "kernel '" + kernel + "', block " + std::to_string(block) +
            ": threads wait at a barrier that others of their group never "
            "reach (or have left)");
        break;
      }
    }
  }
  active = outer;
  return status;
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
        bool threaded =
            synchronizes(kernel) || kernel.getNumWorkgroupAttributions() > 0;
        if (failed(threaded ? emulateThread(
                                  b, kernel,
                                  emulator->threaded[kernel.getName().str()])
                            : emulateKernel(b, kernel)))
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
          "convert-scf-to-cf,convert-vector-to-llvm,convert-ub-to-llvm,"
          "convert-math-to-llvm,"
          "convert-math-to-libm,"
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
    if (fn->args[i].read())
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
    if (Status s = this->launch(launch.kernel, launch.grid, launch.block, args);
        !s.ok())
      return s;
  }
  for (size_t i = 0; i < fn->args.size(); ++i)
    if (fn->args[i].output)
      std::memcpy(pointers[i], device[i].data(), fn->args[i].bytes);
  return Status();
}

loom::Status loom::e2e::GpuEmulator::launch(const std::string &kernel,
                                            const int64_t grid[3],
                                            const int64_t block[3],
                                            std::vector<void *> args) {
  if (arity(kernel) < 0)
    return Status::error("kernel '" + kernel + "' is not in the program");
  if (grid[1] != 1 || grid[2] != 1 || block[1] != 1 || block[2] != 1)
    return Status::error("the emulator runs 1-D launches only");
  int64_t dims[2] = {grid[0], block[0]};
  if (auto it = threaded.find(kernel); it != threaded.end()) {
    auto fn = jit->packedFunction(kernel);
    if (!fn)
      return Status::error(llvm::toString(fn.takeError()));
    return runFibers(*fn, args, it->second, dims[0], dims[1], kernel);
  }
  args.push_back(dims);
  if (llvm::Error err = jit->call(kernel, args))
    return Status::error(llvm::toString(std::move(err)));
  return Status();
}

int64_t loom::e2e::GpuEmulator::arity(const std::string &kernel) const {
  for (const gpu::Function &fn : plan.functions)
    for (const gpu::Launch &launch : fn.launches)
      if (launch.kernel == kernel)
        return int64_t(launch.args.size());
  return -1;
}
