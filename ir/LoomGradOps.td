//===- LoomGradOps.td - fused backward ops -----------------*- tablegen -*-===//
//
// Ops that `loom-autodiff` emits for the backward pass where a fused closed
// form beats a composition of forward ops: attention (FlashAttention-2
// form), cross-entropy, layer norm, GELU, embedding (scatter-add) and the
// LSTM (backpropagation through time). Included from LoomOps.td so all ODS
// code is generated into one translation unit.
//
//===----------------------------------------------------------------------===//

#ifndef LOOM_IR_LOOMGRADOPS_TD
#define LOOM_IR_LOOMGRADOPS_TD

def Loom_AttentionLseOp : Loom_PureOp<"attention_lse"> {
  let summary = "Row log-sum-exp of attention scores";
  let description = [{
    For the operands and attributes of `loom.attention`, the log-sum-exp over
    the attended keys of each query's scaled scores:
    `lse[..., i] = log(sum_j exp(scale * q[..., i, :] . k[..., j, :]))`,
    the sum running over the keys that `causal` and `key_mask` let query `i`
    attend. A query that attends no key gets `lse = 0`. The result is
    `[..., Tq]` with the element type of `q`. It is the statistic that the
    FlashAttention-2 backward (`loom.attention_grad`) reuses to recompute the
    probabilities `P = exp(S - lse)` without storing them. Counts
    `2*Tq*Tk*D + 3*Tq*Tk` per batch entry.

    ```mlir
    %lse = loom.attention_lse %q, %k, causal = true, scale = 1.250000e-01
        : tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32> -> tensor<2x4x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$q, Loom_FloatTensor:$k,
                       Optional<Loom_BoolTensor>:$key_mask, BoolAttr:$causal,
                       Loom_F64Attr:$scale);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` (`mask` $key_mask^ `,`)? `causal` `=` $causal `,`
    `scale` `=` $scale attr-dict `:` type($q) `,` type($k)
    (`,` type($key_mask)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_AttentionGradOp : Loom_PureOp<"attention_grad", [
    AllTypesMatch<["q", "d_q"]>, AllTypesMatch<["k", "d_k"]>,
    AllTypesMatch<["v", "d_v"]>, AllTypesMatch<["out", "d_out"]>]> {
  let summary = "Backward of attention, FlashAttention-2 formulation";
  let description = [{
    The gradients of `out = loom.attention(q, k, v, key_mask, causal, scale)`
    given `d_out`, from the saved `out` and its row log-sum-exp `lse`
    (`loom.attention_lse`), without the probabilities of the forward pass:

    ```
    S  = scale * q @ k^T  (masked entries excluded)
    P  = exp(S - lse)                 // recomputed, 0 where masked
    Δ  = rowsum(d_out ∘ out)          // [..., Tq]
    dV = P^T @ d_out
    dP = d_out @ v^T
    dS = P ∘ (dP - Δ)
    dQ = scale * dS @ k;   dK = scale * dS^T @ q
    ```

    Operands have the types of the forward op's (`lse` is `[..., Tq]`).
    Counts `(6*D + 4*Dv + 6)*Tq*Tk` per batch entry: the recomputed `S`,
    the four products and the elementwise work.

    ```mlir
    %dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %lse, %do,
        causal = true, scale = 1.250000e-01
        : tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>,
          tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>, tensor<2x4x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$q, Loom_FloatTensor:$k,
                       Loom_FloatTensor:$v, Loom_FloatTensor:$out,
                       Loom_FloatTensor:$lse, Loom_FloatTensor:$d_out,
                       Optional<Loom_BoolTensor>:$key_mask, BoolAttr:$causal,
                       Loom_F64Attr:$scale);
  let results = (outs Loom_FloatTensor:$d_q, Loom_FloatTensor:$d_k,
                      Loom_FloatTensor:$d_v);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $out `,` $lse `,` $d_out `,`
    (`mask` $key_mask^ `,`)? `causal` `=` $causal `,` `scale` `=` $scale
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($out) `,`
    type($lse) (`,` type($key_mask)^)?
  }];
  let hasVerifier = 1;
}

def Loom_CrossEntropyGradOp : Loom_PureOp<"cross_entropy_grad", [
    AllTypesMatch<["logits", "d_logits"]>]> {
  let summary = "Backward of cross-entropy: softmax minus one-hot, fused";
  let description = [{
    The gradient of `loss = loom.cross_entropy(logits, targets,
    ignore_index)` with respect to `logits`, scaled by the rank-0 `d_loss`:
    `(softmax(logits[p]) - onehot(targets[p])) * d_loss / n` at every
    position `p` whose target is not `ignore_index`, `n` being the number of
    such positions; rows of ignored positions are 0. Counts 5 FLOPs per
    logit. With `lse` (the rows' `loom.logsumexp`, shared with the forward
    by `loom-fuse-cross-entropy`) the softmax is `exp(logits - lse)`: one
    pass over the logits instead of three.

    ```mlir
    %dl = loom.cross_entropy_grad %logits, %t, %dloss, ignore_index = -100
        : tensor<2x16x256xf32>, tensor<2x16xi32>, tensor<f32>
    %dl2 = loom.cross_entropy_grad %logits, %t, %dloss, lse %lse,
        ignore_index = -100
        : tensor<2x16x256xf32>, tensor<2x16xi32>, tensor<f32>,
          tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$logits, Loom_IndexTensor:$targets,
                       Loom_FloatTensor:$d_loss,
                       Optional<Loom_FloatTensor>:$lse,
                       Loom_I64Attr:$ignore_index);
  let results = (outs Loom_FloatTensor:$d_logits);
  let assemblyFormat = [{
    $logits `,` $targets `,` $d_loss `,` (`lse` $lse^ `,`)? `ignore_index`
    `=` $ignore_index attr-dict `:` type($logits) `,` type($targets) `,`
    type($d_loss) (`,` type($lse)^)?
  }];
  let hasVerifier = 1;
}

def Loom_LogSumExpOp : Loom_PureOp<"logsumexp"> {
  let summary = "log(sum(exp(x))) over the last dim, max-shifted";
  let description = [{
    `x: [..., V]` -> `[...]`: `max + log(sum(exp(x - max)))` per row, `max`
    being the row's maximum. Made by `loom-fuse-cross-entropy` so that a
    cross-entropy and its gradient read the softmax's normalizer from one
    place. Counts 3 FLOPs per element.

    ```mlir
    %lse = loom.logsumexp %logits : tensor<2x16x256xf32> -> tensor<2x16xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input);
  let results = (outs Loom_FloatTensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Loom_LayerNormGradOp : Loom_PureOp<"layer_norm_grad", [
    AllTypesMatch<["input", "d_result", "d_input"]>,
    AllTypesMatch<["gamma", "d_gamma", "d_beta"]>]> {
  let summary = "Backward of layer normalization, closed form";
  let description = [{
    The gradients of `y = loom.layer_norm(x, gamma, beta, eps)` given
    `d_result`, per row of the last dim (`D` elements), with
    `xhat = (x - mean) * rstd`, `rstd = 1 / sqrt(var + eps)`, `g = d_result
    * gamma`:

    ```
    d_input = rstd * (g - mean(g) - xhat * mean(g * xhat))
    d_gamma = sum over rows of d_result * xhat
    d_beta  = sum over rows of d_result
    ```

    Counts 12 FLOPs per element.

    ```mlir
    %dx, %dg, %db = loom.layer_norm_grad %x, %g, %dy, eps = 1.000000e-05
        : tensor<2x8xf32>, tensor<8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$gamma,
                       Loom_FloatTensor:$d_result, Loom_F64Attr:$eps);
  let results = (outs Loom_FloatTensor:$d_input, Loom_FloatTensor:$d_gamma,
                      Loom_FloatTensor:$d_beta);
  let assemblyFormat = [{
    $input `,` $gamma `,` $d_result `,` `eps` `=` $eps attr-dict `:`
    type($input) `,` type($gamma)
  }];
  let hasVerifier = 1;
}

def Loom_GeluGradOp : Loom_PureOp<"gelu_grad", [
    AllTypesMatch<["input", "d_result", "d_input"]>]> {
  let summary = "Backward of GELU";
  let description = [{
    `d_input = d_result * gelu'(input)` elementwise, the derivative of the
    form `approximate` selects (see `loom.gelu`): for the erf form
    `Phi(x) + x * phi(x)`; for the tanh form, with
    `u = sqrt(2/pi) * (x + 0.044715 x^3)`,
    `0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 0.134145 x^2)`.
    Counts 12 FLOPs per element.

    ```mlir
    %dx = loom.gelu_grad %x, %dy, approximate = true : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$d_result,
                       BoolAttr:$approximate);
  let results = (outs Loom_FloatTensor:$d_input);
  let assemblyFormat = [{
    $input `,` $d_result `,` `approximate` `=` $approximate attr-dict `:`
    type($input)
  }];
}

def Loom_EmbeddingGradOp : Loom_PureOp<"embedding_grad"> {
  let summary = "Backward of embedding: scatter-add into the table";
  let description = [{
    `ids: [...]` (`i32`), `d_result: [..., D]` -> `d_table: [vocab, D]`: row
    `r` of the result is the sum of the rows of `d_result` whose id is `r`
    (0 for ids that do not occur). Ids outside `[0, vocab)` are undefined
    behavior, as in `loom.embedding`. Counts one FLOP per element of
    `d_result`.

    ```mlir
    %dt = loom.embedding_grad %ids, %dy, vocab = 256
        : tensor<2x16xi32>, tensor<2x16x64xf32> -> tensor<256x64xf32>
    ```
  }];
  let arguments = (ins Loom_IndexTensor:$ids, Loom_FloatTensor:$d_result,
                       Loom_I64Attr:$vocab);
  let results = (outs Loom_FloatTensor:$d_table);
  let assemblyFormat = [{
    $ids `,` $d_result `,` `vocab` `=` $vocab attr-dict `:` type($ids) `,`
    type($d_result) `->` type($d_table)
  }];
  let hasVerifier = 1;
}

def Loom_LstmGradOp : Loom_PureOp<"lstm_grad", [
    AllTypesMatch<["input", "d_input"]>, AllTypesMatch<["h0", "d_h0", "d_h_n"]>,
    AllTypesMatch<["c0", "d_c0", "d_c_n"]>,
    AllTypesMatch<["w_ih", "d_w_ih"]>, AllTypesMatch<["w_hh", "d_w_hh"]>,
    AllTypesMatch<["bias", "d_bias"]>]> {
  let summary = "Backward of the LSTM: backpropagation through time";
  let description = [{
    The gradients of `loom.lstm(input, h0, c0, w_ih, w_hh, bias)` with
    respect to all six operands, given the gradients of its three results
    (`d_outputs: [B, T, H]`, `d_h_n`, `d_c_n: [B, H]`). The forward
    recurrence is run again to recover the gates and cell states, then the
    time steps are walked backwards:

    ```
    dh = d_h_n;  dc = d_c_n
    for t = T-1 .. 0:
      dh += d_outputs[:, t]
      do = dh * tanh(c_t);   dc += dh * o * (1 - tanh(c_t)^2)
      di = dc * g;  dg = dc * i;  df = dc * c_{t-1};  dc = dc * f
      dz = [di * i(1-i), df * f(1-f), dg * (1-g^2), do * o(1-o)]
      d_input[:, t] = dz @ w_ih^T;  dh = dz @ w_hh^T
      d_w_ih += x_t^T @ dz;  d_w_hh += h_{t-1}^T @ dz;  d_bias += sum_b dz
    d_h0 = dh;  d_c0 = dc
    ```

    Counts `B*T*(24*H*(I + H) + 90*H)`: the recomputed forward plus the
    four backward products.

    ```mlir
    %dx, %dh0, %dc0, %dwih, %dwhh, %db = loom.lstm_grad %x, %h0, %c0, %wih,
        %whh, %b, %dout, %dh, %dc
        : tensor<2x16x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>,
          tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>,
          tensor<2x16x32xf32>
    ```
  }];
  let arguments = (ins Loom_FloatTensor:$input, Loom_FloatTensor:$h0,
                       Loom_FloatTensor:$c0, Loom_FloatTensor:$w_ih,
                       Loom_FloatTensor:$w_hh, Loom_FloatTensor:$bias,
                       Loom_FloatTensor:$d_outputs, Loom_FloatTensor:$d_h_n,
                       Loom_FloatTensor:$d_c_n);
  let results = (outs Loom_FloatTensor:$d_input, Loom_FloatTensor:$d_h0,
                      Loom_FloatTensor:$d_c0, Loom_FloatTensor:$d_w_ih,
                      Loom_FloatTensor:$d_w_hh, Loom_FloatTensor:$d_bias);
  let assemblyFormat = [{
    $input `,` $h0 `,` $c0 `,` $w_ih `,` $w_hh `,` $bias `,` $d_outputs `,`
    $d_h_n `,` $d_c_n attr-dict `:` type($input) `,` type($h0) `,` type($c0)
    `,` type($w_ih) `,` type($w_hh) `,` type($bias) `,` type($d_outputs)
  }];
  let hasVerifier = 1;
}

#endif // LOOM_IR_LOOMGRADOPS_TD
