//===- Passes.td - loom passes -----------------------------*- tablegen -*-===//
//
// Every loom pass, alphabetical. Each has its own file named after it.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_PASSES_PASSES_TD
#define LOOM_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def LoomAutodiff : Pass<"loom-autodiff", "mlir::ModuleOp"> {
  let summary = "Derives the gradient of a scalar loss function (reverse mode)";
  let description = [{
    For the function `function` (one rank-0 float result, the loss; static
    shapes; loom ops only), builds `<function>_grad`: the forward body once,
    then the backward sweep, which walks the ops in reverse and asks each
    through `VjpOpInterface` for the gradients of its operands. It returns
    the loss followed by one gradient per trainable parameter, in
    declaration order, each marked with a `loom.grad_of` result attribute
    (`loom-materialize-parameters` packs them into one buffer in the layout
    of the parameter buffer).

    Only values that depend on a trainable parameter are differentiated,
    and an op is asked only for the operands that need a gradient: frozen
    parameters and integer inputs cause no backward work at all. Trainable
    parameters are marked `loom.trainable`. `trainable` lists parameter
    names or name prefixes (`blocks.3` selects `blocks.3.ln1.weight`);
    empty selects every parameter. A trainable parameter the loss does not
    depend on gets a zero gradient and a warning. The forward function is
    erased unless `keep-forward` is set.

    Before:
    ```mlir
    loom.parameter @w : tensor<4xf32> init = {kind = "zeros"}
    func.func @loss(%x: tensor<4xf32>) -> tensor<f32> {
      %w = loom.get_parameter @w : tensor<4xf32>
      %y = loom.mul %x, %w : tensor<4xf32>, tensor<4xf32>
      %l = loom.reduce_sum %y, axes = [0], keepdim = false : tensor<4xf32>
      return %l : tensor<f32>
    }
    ```
    After (`%g` is the gradient of `@w`: `%x` broadcast):
    ```mlir
    func.func @loss_grad(%x: tensor<4xf32>)
        -> (tensor<f32>, tensor<4xf32> {loom.grad_of = "w"})
    ```
  }];
  let options = [
    Option<"function", "function", "std::string", "\"loss\"",
           "The scalar function to differentiate">,
    ListOption<"trainable", "trainable", "std::string",
               "Trainable parameter names or prefixes (empty: all)">,
    Option<"keepForward", "keep-forward", "bool", "false",
           "Keep the forward function">,
  ];
}

def LoomCountFlops : Pass<"loom-count-flops", "mlir::func::FuncOp"> {
  let summary = "Annotates each function with the floating-point operations "
                "one call performs";
  let description = [{
    Sums `CostModelOpInterface::getFlopCount` over the ops of a function and
    stores the total as `loom.flops` (an `i64` attribute) on the function.
    Benchmarks divide it by the measured time to report FLOP/s. A function
    with a dynamic shape gets no attribute and a warning names the op.

    Before:
    ```mlir
    func.func @f(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
      %0 = loom.matmul %a, %b : tensor<4x8xf32>, tensor<8x2xf32>
      return %0 : tensor<4x2xf32>
    }
    ```
    After: `func.func @f(...) attributes {loom.flops = 128 : i64}`.
  }];
}

def LoomDeriveDecode : Pass<"loom-derive-decode", "mlir::ModuleOp"> {
  let summary = "Derives an incremental-decoding step from a decoder's "
                "forward function";
  let description = [{
    Rewrites `function(tokens: i32[B, T], context...) -> ...` (static
    shapes; a decoder whose only mixing along T is causal self-attention;
    `context`: inputs the same at every step, such as an encoder's memory and
    the source ids) into `<function>_decode(tokens, start: i32[B],
    context..., k_cache.0, v_cache.0, ...)`:
    `T` new tokens per sequence at positions `start[b] .. start[b] + T - 1`.
    One call with `start = 0` and the prompt is the prefill; calls with
    `T = 1` are decode steps. Batched sequences may sit at different
    positions.

    - Each `arange(T)` (the positions of a full forward) becomes
      `decode_positions(start, tokens)`; it may only feed embeddings (whose
      tables must have at least `capacity` rows) and sinusoidal encodings.
    - Each causal `loom.attention` becomes a `loom.cached_attention` over two
      new arguments `[B, H, capacity, D]`, its key and value cache; the
      updated caches are extra results marked `loom.updates = <argument
      index>`, which the CPU pipeline updates in place and drops from the
      signature.
    - Result types downstream of the rewritten ops are re-inferred.

    An attention whose keys and values do not depend on the tokens
    (cross-attention to a context input) acts on each query alone and stays
    as it is. Work that depends on the context inputs but not on the tokens
    (the cross-attention's key and value projections of an encoder's
    memory, a source mask) moves to `<function>_decode_context(context...)`,
    run once per context; the step takes its results as inputs
    `context.<i>` after the context inputs. An `lstm` over the tokens carries
    its state in two more cache arguments (`lstm_h.<i>`, `lstm_c.<i>`). A non-causal or masked attention over the tokens, or another
    use of `arange(T)`, is an error at that op: the result would depend on
    tokens outside the step.

    ```mlir
    // before: %o = loom.attention %q, %k, %v, causal = true, scale = ...
    // after:
    %o, %kc2, %vc2 = loom.cached_attention %q, %k, %v, %kc, %vc, %start, ...
    ```
  }];
  let options = [
    Option<"function", "function", "std::string", "\"logits\"",
           "The forward function to derive the decode step of">,
    Option<"capacity", "capacity", "int64_t", "0",
           "Positions each sequence's cache holds (C > 0)">,
  ];
}

def LoomDistinctResults
    : Pass<"loom-distinct-results", "mlir::func::FuncOp"> {
  let summary = "Gives each returned buffer its own allocation";
  let description = [{
    After bufferization, a function that returns the same buffer twice
    (`return %y, %y`) gets a fresh allocation and a copy for each repeated
    result, so `buffer-results-to-out-params` can turn every result into its
    own output argument.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def LoomDropUpdatedResults
    : Pass<"loom-drop-updated-results", "mlir::ModuleOp"> {
  let summary = "Drops results that bufferized into the argument they update";
  let description = [{
    After bufferization (both targets): a function result marked
    `loom.updates = i` is removed from the results, since the caller owns
    that buffer: a decode step's key/value cache, or a training step's
    parameters and optimizer moments, is argument `i`'s buffer itself,
    updated in place; another value (an LSTM's final state) is copied into
    argument `i` before the return.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def LoomFuseCrossEntropy
    : Pass<"loom-fuse-cross-entropy", "mlir::func::FuncOp"> {
  let summary = "Shares one logsumexp between a cross-entropy and its gradient";
  let description = [{
    Where a function computes `loom.cross_entropy` and, after it in the same
    block, `loom.cross_entropy_grad` over the same logits, targets and
    `ignore_index` (a training step), inserts one `loom.logsumexp` of the
    logits before the forward and hands it to both as their `lse` operand.
    Lowered, the forward then reads one logit per row and the gradient is
    `exp(logits - lse) - onehot` in one pass: three passes over the logits
    instead of five (a GPT-2 step's [B*T, 50257] logits are its largest
    tensor). Runs after `loom-count-flops`: the count stays the model's.

    Before:
    ```mlir
    %l = loom.cross_entropy %x, %t, ignore_index = -100 : ...
    %d = loom.cross_entropy_grad %x, %t, %one, ignore_index = -100 : ...
    ```
    After:
    ```mlir
    %lse = loom.logsumexp %x : tensor<8x256xf32> -> tensor<8xf32>
    %l = loom.cross_entropy %x, %t, lse %lse, ignore_index = -100 : ...
    %d = loom.cross_entropy_grad %x, %t, %one, lse %lse,
        ignore_index = -100 : ...
    ```
  }];
}

def LoomFuseElementwise
    : Pass<"loom-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "Fuses chains of elementwise linalg.generics";
  let description = [{
    Fuses a producer `linalg.generic` into its consumer when both are
    elementwise (all loops parallel), so a chain such as
    `x * rsqrt(var + eps) * gamma + beta` makes one pass over memory. Unlike
    upstream `linalg-fuse-elementwise-ops` it does not propagate reshapes
    through named ops, so `linalg.matmul` stays a named op for the register
    tiling that follows.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def LoomLowerToLinalg : Pass<"loom-lower-to-linalg", "mlir::func::FuncOp"> {
  let summary = "Lowers loom ops to linalg, tensor, arith, math and scf";
  let description = [{
    Rewrites every computing loom op of a function whose shapes are static:
    elementwise ops become parallel `linalg.generic`s (broadcasting through
    their indexing maps), `matmul` becomes `linalg.matmul` or
    `linalg.batch_matmul` (batch dims folded), reductions, `softmax` and
    `layer_norm` become reduction generics, shape ops become tensor reshapes,
    slices and `linalg.transpose`, `attention` materializes its scores,
    `cross_entropy` works per row and `lstm` is an `scf.for` over time.
    `loom.parameter` and `loom.get_parameter` are left to
    `loom-materialize-parameters`. An op with a dynamic shape is an error.

    Before:
    ```mlir
    %0 = loom.add %a, %b : tensor<4x8xf32>, tensor<8xf32>
    ```
    After:
    ```mlir
    %e = tensor.empty() : tensor<4x8xf32>
    %0 = linalg.generic {indexing_maps = [(d0, d1) -> (d0, d1),
           (d0, d1) -> (d1), (d0, d1) -> (d0, d1)], ...} ins(%a, %b ...)
    ```
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect",
  ];
  let options = [
    Option<"keepAttention", "keep-attention", "bool", /*default=*/"false",
           "Leave f32 `attention`, `attention_lse` and `attention_grad` "
           "with at least one batch dim for a target's attention kernels "
           "(the CPU pipeline's loom-cpu-attention-to-call)">,
    Option<"keepHeadViews", "keep-head-views", "bool", /*default=*/"false",
           "With keep-attention, also leave each `split_heads` whose every "
           "user is a kept attention op, and each `merge_heads` of a kept "
           "attention's (or attention_grad's) result that has no other "
           "user, for the kernels to read and write the [B, T, H*Dh] "
           "tensor in place (no head-major copy)">,
  ];
}

def LoomMaterializeParameters
    : Pass<"loom-materialize-parameters", "mlir::ModuleOp"> {
  let summary = "Turns parameter loads into slices of one flat buffer";
  let description = [{
    Gives each `loom.parameter` a 64-byte-aligned byte offset (`loom.offset`)
    in declaration order and the module the total (`loom.param_bytes`);
    prepends a `params: tensor<N x f32>` argument to every function; and
    replaces each `loom.get_parameter` by a `tensor.extract_slice` of that
    buffer at the parameter's offset, reshaped to its type. The runtime lays
    out its flat parameter buffer the same way.

    Before:
    ```mlir
    loom.parameter @w : tensor<2x3xf32> init = {kind = "zeros"}
    func.func @f() -> tensor<2x3xf32> {
      %w = loom.get_parameter @w : tensor<2x3xf32>
      return %w : tensor<2x3xf32>
    }
    ```
    After:
    ```mlir
    func.func @f(%params: tensor<16xf32>) -> tensor<2x3xf32> {
      %s = tensor.extract_slice %params[0] [6] [1]
      %w = tensor.expand_shape %s [[0, 1]] output_shape [2, 3]
    ```
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

def LoomOptimizer : Pass<"loom-optimizer", "mlir::ModuleOp"> {
  let summary = "Builds a fused training step from a gradient function";
  let description = [{
    Runs after `loom-materialize-parameters` on the module holding
    `<fn>_grad(params, inputs...) -> (loss, grads)` (see `loom-autodiff`)
    and replaces it by

    ```
    train_step(params, state..., hyper: tensor<4xf32>, inputs...)
        -> (loss, params', state'..., grad_norm, first_non_finite)
    ```

    where `state` is the optimizer state, one flat buffer in the parameter
    layout per moment (`sgd`: none, or the momentum buffer when
    `momentum > 0`; `adam`/`adamw`: first and second moments), and `hyper`
    holds the run-time values `[lr, 1 - beta1^t, 1 - beta2^t, 0]`, so
    schedules never recompile. `params'` and `state'` are updates in place
    (writable arguments; results marked `loom.updates`, which
    `loom-drop-updated-results` takes out of the compiled signature). The
    gradients are scaled to a global norm of at most `max-grad-norm` (when
    > 0). A read-only pass then finds `first_non_finite`, the first index
    of the buffer whose update (parameter or moment) would be infinite or
    NaN (the buffer's size where none is), and one fused elementwise loop
    per run of adjacent trainable parameters (`loom.trainable`) with the
    same multiplier writes the update of parameters and state with the
    learning rate `lr * loom.lr_mult` (default multiplier 1), or what was
    there when the step does not commit: the step commits when the loss,
    the norm and every update are finite. A run spans the alignment padding
    between its parameters (zeros, which every rule keeps at zero; with
    adam's or adamw's eps = 0 a zero gradient on zero moments is 0 / 0, and
    such a step is rejected), so a
    model that trains everything alike updates its whole buffer in one
    loop. Frozen parameters and their state are neither read nor written.
    `grad_norm` is the norm before clipping. The norm and the check reduce
    over a grid (chunks x rows x vector lanes) whose partial results do not
    depend on the thread count.

    - `sgd`: `g += wd * p; m = momentum * m + g; p -= lr * (nesterov ?
      g + momentum * m : m)` (plain `p -= lr * g` without momentum).
    - `adam`: `g += wd * p`; `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
      p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)`.
    - `adamw`: as `adam` without the `g += wd * p`, and with the decoupled
      decay `p -= lr * wd * p` (PyTorch's AdamW).
  }];
  let options = [
    Option<"function", "function", "std::string", "\"loss_grad\"",
           "The gradient function">,
    Option<"kind", "kind", "std::string", "\"adamw\"",
           "sgd, adam or adamw">,
    Option<"momentum", "momentum", "double", "0.0", "SGD momentum">,
    Option<"nesterov", "nesterov", "bool", "false", "Nesterov momentum">,
    Option<"beta1", "beta1", "double", "0.9", "Adam beta1">,
    Option<"beta2", "beta2", "double", "0.999", "Adam beta2">,
    Option<"eps", "eps", "double", "1e-8", "Adam epsilon">,
    Option<"weightDecay", "weight-decay", "double", "0.0", "Weight decay">,
    Option<"maxGradNorm", "max-grad-norm", "double", "0.0",
           "Global gradient-norm clipping threshold (0: none)">,
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::tensor::TensorDialect",
  ];
}

def LoomOutlineLayers : Pass<"loom-outline-layers", "mlir::ModuleOp"> {
  let summary = "Outlines the layers of a repeat into one function per phase";
  let description = [{
    The frontend inlines every layer of `repeat(n)`, and autodiff and the
    optimizer work on that straight-line code; compiling it costs time
    linear in the depth. This pass finds the layers again: each op's
    location names its block instance (`blocks[2].attn.query`), so the ops
    of layer 2 of `blocks` are known. Each layer's ops split into convex
    phases: an op's phase counts how often a path to it leaves the layer
    and comes back, so the forward of a layer is phase 0 and its backward
    (which runs after the layers above) phase 1. The layers of one phase
    are paired op by op (by source site) and proven isomorphic: same ops,
    attributes and types, operands from the same op of the layer or from
    the same outside value in every use. Slices of a parameter buffer may
    differ in their offsets, which become index arguments. Each class of
    two or more isomorphic layers becomes one private `no_inline` function
    `<fn>_<repeat>_forward` / `_backward`, called once per layer with the
    layer's outside values; constants and empty tensors are cloned into it.
    What the layer's ops feed outside is returned. Layers that differ (the
    first layer of a model whose inputs need no gradient, say) form their
    own class or stay inline.

    Before (two layers, `%w0`/`%w1` slices of the parameter buffer):
    ```mlir
    %h1 = loom.matmul %x, %w0 loc("blocks[0].fc")
    %y1 = loom.gelu %h1 loc("blocks[0].act")
    %h2 = loom.matmul %y1, %w1 loc("blocks[1].fc")
    %y2 = loom.gelu %h2 loc("blocks[1].act")
    ```
    After:
    ```mlir
    %y1 = call @f_blocks_forward(%x, %params, %c0) : ...
    %y2 = call @f_blocks_forward(%y1, %params, %c4096) : ...
    ```
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::tensor::TensorDialect"];
  let options = [
    Option<"headViews", "head-views", "bool", /*default=*/"false",
           "Treat `split_heads` as a view that a backward recomputes (for "
           "attention kernels that read the [B, T, H*Dh] tensor in place), "
           "and have an attention gradient read its forward's output as "
           "`split_heads` of the `merge_heads` that the forward computes "
           "anyway: the forward then normally hands over neither "
           "head-major copy">,
  ];
}

def LoomSpecialize : Pass<"loom-specialize", "mlir::ModuleOp"> {
  let summary = "Binds the symbolic dims of function signatures and "
                "re-infers every shape";
  let description = [{
    Function arguments name their dynamic dims in a `loom.dims` attribute (an
    array with one string per dim: the symbolic name, or "" for a static dim).
    Given bindings such as `bind=B=2,T=16`, the pass replaces every named dim
    with its value, re-infers the result type of every op in order through
    `InferTypeOpInterface`, and rewrites the function type. A dim that is not
    bound, a binding that contradicts a static dim, or a shape error exposed
    by the new sizes is reported at its location.

    Before (with `bind=T=4`):
    ```mlir
    func.func @f(%x: tensor<?x8xf32> {loom.dims = ["T", ""]}) -> tensor<?x8xf32>
    ```
    After:
    ```mlir
    func.func @f(%x: tensor<4x8xf32>) -> tensor<4x8xf32>
        attributes {loom.bound = {T = 4 : i64}}
    ```
  }];
  let options = [
    ListOption<"bind", "bind", "std::string",
               "Dim bindings NAME=VALUE, e.g. B=2,T=16">,
  ];
}

#endif // LOOM_PASSES_PASSES_TD
