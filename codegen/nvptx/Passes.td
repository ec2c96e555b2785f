//===- Passes.td - NVPTX code generation passes ------------*- tablegen -*-===//

#ifndef LOOM_CODEGEN_NVPTX_PASSES_TD
#define LOOM_CODEGEN_NVPTX_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomGpuAttention : Pass<"loom-gpu-attention", "mlir::func::FuncOp"> {
  let summary = "Runs attention, its lse and its gradient as row loops "
                "whose memory is linear in the sequence length";
  let description = [{
    Right after bufferization (which leaves the f32 `loom.attention`,
    `loom.attention_lse` and `loom.attention_grad` that the lowering kept as
    unknown ops between `to_tensor` and `to_buffer`): each becomes
    `scf.parallel` loops over its batch dims and rows, one row per
    iteration (so one GPU thread per row after outlining), that never
    materialize the `[Tq, Tk]` scores:

    - attention: per query row, an online softmax over the attended keys
      (causal bound, key mask), the output row rescaled and accumulated in
      place, divided by the sum at the end (zeros for a query that attends
      no key);
    - attention_lse: the same running max and sum, `lse = max + log(sum)`;
    - attention_grad (FlashAttention-2): per query row, `delta_i =
      dO_i . O_i` and `dQ_i = scale * sum_j dS_ij k_j`; then per key row,
      `dV_j = sum_i P_ij dO_i` and `dK_j = scale * sum_i dS_ij q_i`, with
      `P = exp(S - lse)` recomputed and `dS = P (dO . v - delta)`.

    With rows of at most 64 values (query, key, value and output rows),
    each is block-tiled instead (FlashAttention): an `scf.parallel` over
    the batch dims, blocks of 64 rows (16 or 32 for shorter sequences)
    and the block's threads (`loom.block_threads`), one row per thread
    with its rows and accumulators in registers, the other operand's rows
    staged per tile in workgroup memory (`memref.alloca`, coalesced
    copies) between two `gpu.barrier`s. All threads of a block run the
    same tiles, so every barrier is reached; rows past the end compute
    the last row's and store nothing.

    - attention and attention_lse: blocks of queries (scaled q row, output
      row); per tile of 64 keys (as many as the block's last query
      attends) the K and V rows, taken 16 at a time: 16 scores, one max,
      one rescaling, then p * v. Keys past the causal bound or the mask
      score -inf (a running max of -inf subtracts 0: no NaN);
    - attention_grad, three kernels: blocks of queries (scaled q row, dO
      row; K and V tiles) for delta and dQ; blocks of keys (k row; tiles
      of scaled Q, dO and lse from the first query tile that attends the
      block) for dV; blocks of keys (k and v rows; delta too) for dK.
      Accumulators of more than 32 columns (dQ, dK) are split into slices,
      a block per slice, each recomputing P and dS: a whole one beside
      the rows would spill.

    With `tensor-cores` 3xtf32 (the default) or tf32, attention and
    attention_lse with rows of at most 64 take `nvgpu.mma.sync` m16n8k8
    instead (FlashAttention-2): 4 warps per 64 queries, a warp's 16 scaled
    q rows as A fragments; per key tile S = Q K^T on tensor cores, the
    masks, each row's max across its 4 lanes (`gpu.shuffle xor` 1, 2),
    the rescaling, P through shared memory (in K's tile, between
    barriers) and P V on tensor cores; attention_grad's three kernels
    likewise: query blocks (S = Q K^T and dP = dO V^T per 32 keys, dS
    through shared memory, dQ += dS K) and key blocks for dV and dK (per
    32 queries S^T = K Q^T, dP^T = V dO^T, P^T or dS^T through shared
    memory, dV += P^T dO, dK += dS^T Q).

    Longer rows: one thread per row, the output row updated in memory, the
    gradient's dQ, dK and dV accumulated in place.

    Memory: the outputs and one `[..., Tq]` buffer of deltas, instead of
    the scores and probabilities that the linalg lowering materializes
    (8.7 GB for the forward at B 4, H 16, T 4096).
  }];
  let options = [Option<"tensorCores", "tensor-cores", "std::string",
                        "\"3xtf32\"",
                        "attention's products with rows of at most 64 on "
                        "tensor cores: 3xtf32 (f32 accuracy), tf32 (also "
                        "under bf16, which is for contractions), or none "
                        "(FMAs, a thread per query)">];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::math::MathDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::bufferization::BufferizationDialect",
                           "mlir::gpu::GPUDialect",
                           "mlir::nvgpu::NVGPUDialect",
                           "mlir::vector::VectorDialect"];
}

def LoomGpuLowerBf16Mma : Pass<"loom-gpu-lower-bf16-mma"> {
  let summary = "Lowers bf16 nvgpu.mma.sync to nvvm.mma.sync";
  let description = [{
    MLIR 22's `convert-nvgpu-to-nvvm` cannot type an `nvgpu.mma.sync` on
    bf16 operands ("failed to deduce operand PTX types"): NVVM passes bf16
    pairs as `i32` registers and needs the PTX types spelled out. This pass
    (run on the kernels before that conversion) rewrites each m16n8k16
    product of `vector<4x2xbf16>` by `vector<2x2xbf16>` into f32 as
    `nvvm.mma.sync` with row/col layouts and bf16 multiplicand types: each
    pair bitcast to an `i32`, the accumulator's four floats, the result
    struct taken apart into the `vector<2x2xf32>` the loop carries. Other
    products are left to `convert-nvgpu-to-nvvm`.

    Before:
    ```mlir
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]}
        : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>)
        -> vector<2x2xf32>
    ```
    After: `vector.bitcast` of each row to `vector<1xi32>`, then
    `nvvm.mma.sync A[...] B[...] C[...] {multiplicandAPtxType =
    #nvvm.mma_type<bf16>, ..., shape = #nvvm.shape<m = 16, n = 8, k = 16>}`
    and four `llvm.extractvalue` into `vector.from_elements`.
  }];
  let dependentDialects = ["mlir::NVVM::NVVMDialect",
                           "mlir::LLVM::LLVMDialect",
                           "mlir::vector::VectorDialect"];
}

def LoomGpuOutlineKernels
    : Pass<"loom-gpu-outline-kernels", "mlir::ModuleOp"> {
  let summary = "Turns the device work of host functions into GPU kernel "
                "launches";
  let description = [{
    After bufferization, every top-level op of a host function that touches
    memory becomes a kernel of one `gpu.module @loom_kernels`, launched by
    `gpu.launch_func`:

    - an f32 contraction (`linalg.matmul`, `batch_matmul`, a generic with
      one M, N and K loop and permuted operands) of at least 16 x 8 x 8,
      with `tensor-cores` 3xtf32 (the default) or tf32: tensor cores,
      `nvgpu.mma.sync` m16n8k8 with tf32 operands and f32 accumulators;
      2 x 2 warps per 64 x 64 block of the output (per batch), each warp
      2 x 4 tiles of 16 x 8; the tiles of A and B are double-buffered in
      shared memory (workgroup attributions, 2 slots each): per step of 32
      in k the next step's elements are loaded into registers before the
      step's products and stored into the other slot after, one barrier
      per step; lanes read the fragments mma.sync expects; 3xtf32 splits
      each operand into a tf32 head and the tf32 of
      the rest and adds three products (f32 accuracy), tf32 takes the
      heads only (about 1e-3 relative); with `tensor-cores=bf16` the
      operands are rounded to bf16 as the fragments are read from shared
      memory and each product is an m16n8k16 of `vector<4x2xbf16>` by
      `vector<2x2xbf16>` (about 4e-3 relative; `loom-gpu-lower-bf16-mma`
      lowers it to NVVM). Tails are clamped on load (zeros past K) and
      masked on store;
    - a smaller contraction, or any with `tensor-cores=none`: one thread
      per 4 x 4 block of the output (per batch), columns fastest, 16
      accumulators over K, tails clamped on load and masked on store;
    - a reduction over its last loop whose index is the inputs' innermost
      one (a row's sum, max or min: softmax, layer_norm, cross-entropy),
      at least 64 long, with one combining op that has a neutral element,
      on f32 or i32: a warp per output (8 per 256-thread block); lane l
      folds r = l, l + 32, ... into a partial, five `gpu.shuffle xor`
      combine the warp's partials, lane 0 folds the total into the
      output. Warps past the last output read its inputs and store
      nothing (every lane reaches the shuffles). Fewer than 1024 rows of at
      least 4096 take a block of 256 threads each: the warps' totals meet
      in shared memory after a barrier, three more shuffles combine them;
    - an `scf.parallel` marked `loom.block_threads = N` (from
      `loom-gpu-attention`): its innermost dim, of exactly N iterations,
      is the threads of a block, its other dims the blocks; its
      workgroup `memref.alloca`s become workgroup attributions (16-byte
      aligned), its `gpu.barrier`s stay (an error for barriers or shared
      memory in a loop without the mark), and the kernel may use 255
      registers (`nvvm.maxnreg`);
    - every other linalg op is first rewritten to loops: an `scf.parallel`
      nest (one thread per point of its linearized iteration space,
      `block-size` threads per block, the last dimension fastest so that
      neighbouring threads touch neighbouring elements, a bounds check when
      the block size does not divide it) or, without parallel loops, a
      serial one;
    - a `memref.copy`: an element-wise parallel copy;
    - anything else that reads or writes memory (a full reduction, a
      scatter over data-dependent rows): a run of such ops becomes one
      single-thread kernel.

    A constant fill of a buffer that the next op touching it (a
    contraction or a row reduction that writes exactly that view, and
    reads it nowhere else) then writes is no kernel: that op's kernel
    combines its result with the constant instead of loading the output
    (`loom.init_value` on the op, inside this pass).

    A host loop that allocates (an LSTM's time steps) is unrolled first.
    Scalars loaded on the host are loaded by the kernels that use them
    (an error when a launch in between overwrites their buffer). A buffer
    that a kernel only loads from and stores to is passed as the address
    of its first element: its static offset leaves the kernel's type (the
    launch's `loom.arg_offsets` keeps it, in elements), so the same code
    over another slice is the same kernel, and identical kernels are
    emitted once. `loom.writes` on each launch says which arguments its
    kernel may write.

    Allocations, views (subview, expand/collapse_shape, reinterpret_cast,
    cast), constants and the return stay on the host; so the host function
    is a straight-line launch sequence over buffers, which the launch plan
    (`extractGpuProgram`) reads. Constants that a kernel uses are
    cloned into it; buffers become its arguments. Kernels are named
    `<function>_<n>_<what>` (`loop`, `mma`, `matmul`, `reduce`, `copy` or
    `serial`). Errors
    at the op for what cannot run there (dynamic bounds, a parallel loop
    with results, an allocation inside device work, a host value computed
    from memory).

    Before:
    ```mlir
    scf.parallel (%i) = (%c0) to (%c1000) step (%c1) {
      %x = memref.load %a[%i] : memref<1000xf32>
      memref.store %x, %b[%i] : memref<1000xf32>
    }
    ```
    After:
    ```mlir
    gpu.launch_func @loom_kernels::@f_0_store blocks in (%c4, %c1, %c1)
        threads in (%c256, %c1, %c1) args(%a : memref<1000xf32>,
        %b : memref<1000xf32>)
    ```
  }];
  let options = [Option<"blockSize", "block-size", "int64_t", "256",
                        "Threads per block of the parallel kernels">,
                 Option<"tensorCores", "tensor-cores", "std::string",
                        "\"3xtf32\"",
                        "f32 contractions on tensor cores: 3xtf32 (f32 "
                        "accuracy from three tf32 products), tf32 (one), "
                        "bf16 (operands rounded to bf16) or none (CUDA "
                        "cores)">];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::nvgpu::NVGPUDialect",
                           "mlir::vector::VectorDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::math::MathDialect",
                           "mlir::memref::MemRefDialect"];
}

def LoomGpuPrivateFills : Pass<"loom-gpu-private-fills", "mlir::func::FuncOp"> {
  let summary = "Gives each op that writes into a constant fill its own fill";
  let description = [{
    On linalg on tensors, just before bufferization. CSE leaves one
    `linalg.fill` of a constant for every op that starts from it (the zero
    accumulators of all a layer's products); each of those ops writes its
    result into that value, so bufferization fills one buffer and copies
    it into each op's own buffer: a copy kernel per product, reading and
    writing all of its output. Each such use (a DPS init of a linalg op)
    gets a fill of its own into a fresh `tensor.empty`, which bufferizes
    to a fill of the op's buffer in place; `loom-gpu-outline-kernels` then
    folds the fill of a contraction or row reduction into its kernel. An
    op whose payload does not read its init (an elementwise op) writes a
    fresh `tensor.empty` instead. The original fill stays for the ops that
    read it as an input, or goes if none does.

    Before:
    ```mlir
    %z = linalg.fill ins(%c0 : f32) outs(%e : tensor<64x64xf32>)
    %p = linalg.matmul ins(%a, %b : ...) outs(%z : tensor<64x64xf32>)
    %q = linalg.matmul ins(%c, %d : ...) outs(%z : tensor<64x64xf32>)
    ```
    After: `%p` and `%q` each start from their own `linalg.fill` of `%c0`
    into their own `tensor.empty`.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

def LoomGpuSplitReductions
    : Pass<"loom-gpu-split-reductions", "mlir::func::FuncOp"> {
  let summary = "Splits long full reductions into parallel partial sums";
  let description = [{
    On linalg on tensors, before bufferization: a `linalg.generic` whose
    last loop is a reduction of at least `min-size` elements and whose
    outputs are fewer than 1024 (the global gradient norm over every
    parameter, or its per-chunk sums; a mean over all tokens) would run as
    one GPU thread per output. It becomes two: `r` partial reductions per
    output in parallel,
    thread `j` reducing elements `j, j + r, j + 2r, ...` (neighbouring
    threads read neighbouring elements), then one reduction of the `r`
    partial results (upstream `linalg::splitReduction` with an inner
    parallel dimension). `r` is the largest divisor of the size up to
    `max-ratio`; sizes without a divisor of at least 32 stay as they are.
    Summing in `r` interleaved chains also makes the f32 result more
    accurate than one chain.

    Before:
    ```mlir
    %n = linalg.generic {iterator_types = ["reduction"]}
        ins(%g : tensor<3290624xf32>) outs(%zero : tensor<f32>) {...}
    ```
    After: `tensor.expand_shape %g` to `tensor<6427x512xf32>`, a generic
    with iterators `["reduction", "parallel"]` into `tensor<512xf32>`, and
    a generic that reduces the 512 partial sums into `tensor<f32>`.
  }];
  let options = [Option<"minSize", "min-size", "int64_t", "4096",
                        "The least reduction size to split">,
                 Option<"maxRatio", "max-ratio", "int64_t", "1024",
                        "The most partial reductions">];
  let dependentDialects = ["mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

#endif // LOOM_CODEGEN_NVPTX_PASSES_TD
