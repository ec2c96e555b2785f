//===- Passes.td - CPU code generation passes --------------*- tablegen -*-===//

#ifndef LOOM_CODEGEN_CPU_PASSES_TD
#define LOOM_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomCpuApproximateMath
    : Pass<"loom-cpu-approximate-math", "mlir::func::FuncOp"> {
  let summary = "Replaces transcendental math ops on f32 vectors with "
                "polynomial approximations";
  let description = [{
    `math.exp`, `expm1`, `tanh`, `erf`, `log`, `log1p` and `log2` on
    vectors of f32 become upstream MLIR's polynomial approximations
    (arithmetic on the same vectors), instead of one libm call per lane.
    Scalars and f64 keep the libm calls.

    Before:
    ```mlir
    %y = math.tanh %x : vector<8xf32>
    ```
    After: clamps, a rational polynomial in `%x` and selects, all on
    `vector<8xf32>`. The division of tanh's rational polynomial (its
    denominator is at least 4.9e-3) carries `fastmath<ninf,arcp>`, so that
    it may be a reciprocal estimate and a Newton step.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::math::MathDialect",
                           "mlir::vector::VectorDialect"];
}

def LoomCpuAttentionToCall
    : Pass<"loom-cpu-attention-to-call", "mlir::ModuleOp"> {
  let summary = "Runs f32 attention, its lse and its gradient as flash "
                "attention kernel calls, one per head";
  let description = [{
    Right before bufferization: each f32 `loom.attention`,
    `loom.attention_lse`, `loom.attention_grad` and `loom.cached_attention`
    (whose new keys and values are first inserted into its caches at each
    sequence's start) with at least one batch
    dim becomes an `scf.parallel` over its heads (batch dims flattened) whose
    body calls `loom_attention_forward` or `loom_attention_backward`
    (runtime/include/loom/Kernels.h) with each head's addresses and strides.
    The kernels tile queries and keys into blocks with an online
    softmax, so no [Tq x Tk] tensor or buffer exists; causal attention skips
    the key blocks after the diagonal. An attention and an attention_lse of
    the same q, k, mask, causal and scale share one call (the forward of a
    training step computes q k^T once). Operands become buffers through
    `bufferization.to_buffer`, results are fresh buffers returned through
    `bufferization.to_tensor restrict writable`. An operand that is a
    `loom.split_heads` of x [B, T, H*Dh] is read from x's buffer in place
    (head i: batch entry i / H, columns from (i % H) * Dh), and a result
    whose only user is a `loom.merge_heads` is written into a [B, T, H*Dh]
    buffer that replaces the merge: no head-major copy either way.

    Before:
    ```mlir
    %o = loom.attention %q, %k, %v, causal = true, scale = 0.125
        : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>
        -> tensor<2x4x16x8xf32>
    ```
    After:
    ```mlir
    %qb = bufferization.to_buffer %q_heads read_only : memref<8x16x8xf32>
    %ob = memref.alloc() : memref<8x16x8xf32>
    scf.parallel (%h) = (%c0) to (%c8) step (%c1) {
      func.call @loom_attention_forward(...)
    }
    %o = bufferization.to_tensor %ob restrict writable ...
    ```

    The block shape is the kernels' `blockQ` / `blockK` argument, from
    `block-q` / `block-k` (0: the kernels' default, 64 x 256, measured on
    Zen 3; the supported shape nearest a request is used: queries 32, 64 or
    128 rounded up to whole register tiles, keys 64, 128 or 256).
  }];
  let options = [
    Option<"blockQ", "block-q", "int64_t", "0",
           "Queries per block (0: the kernels' default)">,
    Option<"blockK", "block-k", "int64_t", "0",
           "Keys per block (0: the kernels' default)">,
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::func::FuncDialect", "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect", "mlir::tensor::TensorDialect",
  ];
}

def LoomCpuReturnAllocations
    : Pass<"loom-cpu-return-allocations", "mlir::ModuleOp"> {
  let summary = "Returned reshapes of local buffers become the buffers";
  let description = [{
    After bufferization, before `buffer-results-to-out-params`: a function
    that returns an `expand_shape` or `collapse_shape` of a static
    `memref.alloc` of its own (the row expansion of a GEMM product whose
    epilogue wrote its result in place, attention's heads split off the
    batch) allocates the returned shape instead; the allocation's other
    users read the inverse reshape of it. The function then returns an
    allocation, which `buffer-results-to-out-params` replaces with the
    caller's buffer: the producer writes there directly instead of a copy
    (an outlined GPT-mini layer's forward copied 14 MB per call, the
    pre-activation of its MLP among them). A buffer returned more than once
    (itself and a view, or two views) stays as it is.

    Before:
    ```mlir
    %a = memref.alloc() : memref<2048x1024xf32>
    ... writes %a ...
    %e = memref.expand_shape %a [[0, 1], [2]] ... into memref<8x256x1024xf32>
    return %e
    ```
    After:
    ```mlir
    %e = memref.alloc() : memref<8x256x1024xf32>
    %a = memref.collapse_shape %e [[0, 1], [2]] ... into memref<2048x1024xf32>
    ... writes %a ...
    return %e
    ```
  }];
}

def LoomCpuGemmToCall : Pass<"loom-cpu-gemm-to-call", "mlir::ModuleOp"> {
  let summary = "Calls the packed GEMM kernel for contractions on buffers";
  let description = [{
    After bufferization and deallocation, every f32 contraction with one M,
    N and K loop and at most one batch loop (`linalg.matmul`,
    `linalg.batch_matmul`, or a generic with permuted operand maps) becomes
    a call of `loom_sgemm` (runtime/include/loom/Kernels.h) with each
    operand's address and strides, read from its strided metadata. An op
    marked `loom.zero_init` overwrites its output; others accumulate into
    it. An output whose rows and columns are both strided keeps the loop
    nest (and gets its zero fill back).

    A GEMM paired with an epilogue generic (`loom-cpu-fuse-gemm-epilogues`)
    calls `loom_sgemm_epilogue` instead, with `@__loom_epilogue_<fn>_<id>`:
    the generic's body compiled for one block of C (per row, the row's
    operand addresses from its position in the iteration space; per vector
    of columns, masked loads, the body on vectors, masked stores) and a
    context on the stack (where this call's C starts in the product, and
    every operand's address and strides). The kernel runs it on each cache
    block of C once the block is final; the generic is then erased. A GEMM
    whose C is not row-major, whose buffers do not match, or whose epilogue
    would write the GEMM's own inputs makes a plain call, and the generic
    stays.

    Before:
    ```mlir
    linalg.matmul {loom.zero_init} ins(%a, %b : memref<8x16xf32>,
        memref<16x4xf32>) outs(%c : memref<8x4xf32>)
    ```
    After:
    ```mlir
    func.call @loom_sgemm(%c1, %c8, %c4, %c16, %pa, %c0, %c16, %c1, %pb, %c0,
        %c4, %c1, %pc, %c0, %c4, %c0, %c1) : (i64, ..., i64) -> ()
    ```

    The last argument is `threads`: the kernel runs a large GEMM on a team
    of up to that many OpenMP threads, each with a share of the batch, the
    rows or the columns in whole register tiles (and on the calling thread
    alone inside a parallel loop), so GEMMs are not split across threads
    before (loom-cpu-tile-and-vectorize).
  }];
  let options = [
    Option<"threads", "threads", "int64_t", /*default=*/"1",
           "Threads of each GEMM's team (the kernel's `threads` argument)">,
  ];
  let dependentDialects = ["mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::LLVM::LLVMDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect"];
}

def LoomCpuConcatInPlace : Pass<"loom-cpu-concat-in-place", "mlir::func::FuncOp"> {
  let summary = "Computes the pieces of a concatenation where the result "
                "keeps them";
  let description = [{
    On buffers, before the workspace is planned: a `tensor.concat` bufferizes
    to a buffer and one `memref.copy` of each piece into its slice. A piece
    that is a buffer of its own (a `memref.alloc`, flattened or not by a
    `memref.collapse_shape`), used only before its copy, is computed in its
    slice instead: the result becomes an i8 buffer, the result and each
    such piece `memref.view`s of it (same types, so every user stays as it
    is: a call that writes the piece as an out-param, a kernel), and the
    copy goes. The training step's flat gradient is such a concatenation:
    500 MB copied per GPT-2-small step before.

    The result's buffer is allocated where its first piece was (a lifetime
    that covers all of them); its other users must come after the last
    copy, and slices that stay copies (constant zeros) must not overlap the
    pieces.

    Before:
    ```mlir
    %g = memref.alloc() : memref<48xf32>
    %w = memref.alloc() : memref<4x8xf32>
    call @backward(%x, %w) : (memref<2x4xf32>, memref<4x8xf32>) -> ()
    %flat = memref.collapse_shape %w [[0, 1]] : memref<4x8xf32> into memref<32xf32>
    %s = memref.subview %g[16] [32] [1] : memref<48xf32> to memref<32xf32, strided<[1], offset: 16>>
    memref.copy %flat, %s : memref<32xf32> to memref<32xf32, strided<[1], offset: 16>>
    ```
    After:
    ```mlir
    %bytes = memref.alloc() : memref<192xi8>
    %g = memref.view %bytes[%c0][] : memref<192xi8> to memref<48xf32>
    %w = memref.view %bytes[%c64][] : memref<192xi8> to memref<4x8xf32>
    call @backward(%x, %w) : (memref<2x4xf32>, memref<4x8xf32>) -> ()
    ```
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def LoomCpuPlanWorkspace
    : Pass<"loom-cpu-plan-workspace", "mlir::ModuleOp"> {
  let summary = "Places every temporary buffer in one workspace planned at "
                "compile time";
  let description = [{
    After bufferization, each function's statically shaped `memref.alloc`s
    get byte offsets in one workspace: an allocation lives from its
    (outermost) defining op to the last use of any of its views, and
    first-fit interval packing lets buffers whose lifetimes do not overlap
    share memory. The workspace is a private, uninitialized `memref.global`
    per function (allocated once, when the module is loaded), and each alloc
    becomes a `memref.view` of it, so a call performs no `malloc` and no
    first-touch page faults after the first call. Allocations that escape
    (returned, yielded from a loop) or have dynamic shapes are left to the
    deallocation pipeline. The planned size is recorded as
    `loom.workspace_bytes` on the function. Calls of one compiled function
    must not overlap in time.

    Before:
    ```mlir
    %a = memref.alloc() : memref<64xf32>
    ```
    After:
    ```mlir
    memref.global "private" @__loom_workspace_f : memref<256xi8> = uninitialized
    %ws = memref.get_global @__loom_workspace_f : memref<256xi8>
    %a = memref.view %ws[%c0][] : memref<256xi8> to memref<64xf32>
    ```
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def LoomCpuPrepareGemms
    : Pass<"loom-cpu-prepare-gemms", "mlir::func::FuncOp"> {
  let summary = "Folds transposes and zero fills into the contractions that "
                "the packed GEMM kernel computes";
  let description = [{
    On tensors, for each f32 contraction that `loom-cpu-gemm-to-call` will
    turn into a kernel call: an input produced by `linalg.transpose` is read
    in place through a permuted indexing map (the op becomes a
    `linalg.generic`), and an output initialized by a zero `linalg.fill`
    takes the fill's destination instead and the unit attribute
    `loom.zero_init` (the kernel writes the product rather than adding it).
    A `linalg.transpose` of such a 2-D product (zero-initialized, read by
    the transpose alone) folds into it: C^T = B^T A^T is computed into the
    transpose's output, the inputs swapped and the loops renumbered so that
    M comes first again (a tied head's weight gradient, X^T dLogits [d, V]
    transposed to the embedding's [V, d], was a 154 MB copy a column at a
    time per GPT-2-small step).

    Before:
    ```mlir
    %kt = linalg.transpose ins(%k : tensor<4x16x8xf32>)
          outs(%e : tensor<4x8x16xf32>) permutation = [0, 2, 1]
    %z = linalg.fill ins(%zero : f32) outs(%e2 : tensor<4x16x16xf32>)
    %s = linalg.batch_matmul ins(%q, %kt : ...) outs(%z : ...)
    ```
    After:
    ```mlir
    %s = linalg.generic {indexing_maps = [(b, m, n, k) -> (b, m, k),
                                          (b, m, n, k) -> (b, n, k), ...]}
         ins(%q, %k : ...) outs(%e2 : ...) attrs = {loom.zero_init}
    ```
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def LoomCpuFuseGemmEpilogues
    : Pass<"loom-cpu-fuse-gemm-epilogues", "mlir::func::FuncOp"> {
  let summary = "Pairs each kernel GEMM with the elementwise op that "
                "consumes its product, to run as the kernel's epilogue";
  let description = [{
    On tensors, after `loom-cpu-prepare-gemms`: for a 2-D f32 GEMM that
    `loom-cpu-gemm-to-call` will call, the first `linalg.generic` that reads
    its product (directly or through a `tensor.expand_shape` of the rows)
    with an identity map, is all-parallel, has identity output maps, a body of
    scalar arith/math ops (captured values only constants), f32 operands
    whose last dim is the product's columns (or broadcast along them), and
    operands computed before the GEMM, becomes its *epilogue*: it moves right
    after the GEMM and both ops get an id unique in the function
    (`loom.epilogue` on the GEMM, `loom.epilogue_of` on the generic, with
    `loom.epilogue_operand`: which of its operands reads the product).
    `loom-cpu-tile-and-vectorize` leaves the generic alone;
    `loom-cpu-gemm-to-call` compiles its body into a function that the
    kernel calls on each cache block of the product once the block is final
    (bias, activation, residual and the GELU of the backward run while the
    block is in L2, instead of in a separate pass over memory).

    When nothing else reads the product, the epilogue's first output of the
    product's type is the product itself: each block is overwritten with
    the result while it is in cache (elementwise: each element is read
    before it is written), and no buffer of its own is streamed to. Other
    outputs become fresh allocations made before the GEMM:
    `bufferization.alloc_tensor`s (not `tensor.empty`s, which CSE merges),
    since the epilogue writes them while the kernel still reads its inputs,
    so they must not be bufferized in place of those.

    A GEMM whose only reader would qualify but for values computed between
    the two (the embedding gradient added to a tied head's weight
    gradient, the sum of the three projections' input gradients) first
    moves down to right before that reader; when the reader still does not
    qualify (another GEMM took it) the GEMM stays where it was.

    Several generics that each qualify and read the product (the MLP's
    pre-activation `h = x W1 + b1`, kept for the backward, and its GELU)
    are first merged into one generic with all their outputs (inputs they
    share passed once, the bodies one after the other), which then is the
    epilogue: the product is read once, in cache, for both.

    Before:
    ```mlir
    %c = linalg.matmul {loom.zero_init} ins(%x, %w : ...) outs(%e : ...)
    %c3 = tensor.expand_shape %c [[0, 1], [2]] ...
    %y = linalg.generic {...} ins(%c3, %bias : ...) outs(%e3 : ...) {
      %s = arith.addf %in, %b : f32
      %g = math.tanh %s : f32 ...
    }
    ```
    After: the same ops, `%y` right after `%c3`, outputs
    `bufferization.alloc_tensor()`, and `{loom.epilogue = 0}` /
    `{loom.epilogue_of = 0, loom.epilogue_operand = 0}`.
  }];
  let dependentDialects = ["mlir::bufferization::BufferizationDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

def LoomCpuStreamingStores
    : Pass<"loom-cpu-streaming-stores", "mlir::func::FuncOp"> {
  let summary = "Writes large output buffers with non-temporal stores";
  let description = [{
    After `convert-vector-to-scf`: in a public function, a vector write
    (`vector.transfer_write` of one contiguous row: no mask, in bounds,
    unit dims before the last, the memref's last dim of stride 1) into a
    view of a function argument of at least `min-bytes` becomes
    `vector.store {nontemporal = true}`: the store bypasses the caches, so
    a buffer far larger than they are is written without first reading
    each line in (a write-allocate costs a read per line) and without
    evicting what is still needed. (It was made for a training step's
    updated parameters and moments, 3 x 500 MB for GPT-2-small, written to
    fresh buffers then; updated in place, each line is read just before,
    and such stores measured the same as ordinary ones.) Such stores are
    weakly ordered, so each thread that made them meets an `llvm.fence
    seq_cst` (`mfence` on x86) before other threads or the caller read the
    buffer: at the end of its iteration of the outermost parallel loop
    around them; when none is parallel, right after the innermost loop
    around them (or the store), before anything that follows, a parallel
    loop in the same outer loop included. Memrefs of other than integers
    or floats are left alone.

    An AdamW update over 124 M parameters (2 threads, C++ with the same
    loop): 130 ms with ordinary stores into the output buffers, 76 with
    non-temporal ones, 66 in place.

    Before:
    ```mlir
    vector.transfer_write %v, %view[%c0] {in_bounds = [true]}
        : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    ```
    (`%view` a subview of an argument of 500 MB) After:
    ```mlir
    vector.store %v, %view[%c0] {nontemporal = true}
        : memref<32xf32, strided<[1], offset: ?>>, vector<32xf32>
    ```
  }];
  let options = [Option<"minBytes", "min-bytes", "int64_t", "8388608",
                        "The least size of an argument written so">];
  let dependentDialects = ["mlir::vector::VectorDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def LoomCpuTileAndVectorize
    : Pass<"loom-cpu-tile-and-vectorize", "mlir::func::FuncOp"> {
  let summary = "Tiles linalg ops for registers and vectorizes the tiles";
  let description = [{
    For every linalg op on tensors with static shapes: contractions
    (`linalg.matmul`, `linalg.batch_matmul`) are tiled to register blocks
    (about 8 rows x 32 columns x 16 of K, choosing tile sizes that divide the
    dims so tiles stay static) and other ops are tiled to rows of their
    innermost dim; each tile is then vectorized with `linalg::vectorize`.
    Contractions become `vector.contract`, which `convert-vector-to-llvm`
    lowers to outer-product FMAs. An op whose tile cannot be vectorized (a
    gather, say) stays a scalar loop nest. The pass runs on tensors, before
    bufferization.
  }];
  let dependentDialects = [
    "mlir::scf::SCFDialect", "mlir::vector::VectorDialect",
    "mlir::tensor::TensorDialect", "mlir::arith::ArithDialect",
  ];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"0",
           "Target f32 elements per vector register (16 on AVX-512, 8 on "
           "AVX2); 0 asks the host CPU">,
    Option<"threads", "threads", "int64_t", /*default=*/"1",
           "Split the outermost parallel loop of large ops into this many "
           "scf.forall chunks (run by OpenMP); 1 keeps everything serial">,
    Option<"gemmKernel", "gemm-kernel", "bool", /*default=*/"false",
           "Leave the contractions that loom_sgemm computes as they are "
           "(not tiled, vectorized or split across threads: the kernel "
           "runs them on its own thread team): loom-cpu-gemm-to-call calls "
           "the kernel for them">,
  ];
}

#endif // LOOM_CODEGEN_CPU_PASSES_TD
