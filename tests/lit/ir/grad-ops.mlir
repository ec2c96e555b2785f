// RUN: loom-opt %s --split-input-file --verify-diagnostics | loom-opt | FileCheck %s
// RUN: loom-opt %s --split-input-file --verify-diagnostics --mlir-print-op-generic | loom-opt | FileCheck %s

// The fused backward ops of LoomGradOps.td: the first chunk round-trips each
// of them through the printer and parser (the invalid chunks after it print
// nothing, so the output is this chunk's module alone); the other chunks
// check their verifiers.

// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x3x8xf32>, %[[K:.*]]: tensor<2x4x5x8xf32>, %[[V:.*]]: tensor<2x4x5x6xf32>, %[[O:.*]]: tensor<2x4x3x6xf32>, %[[DO:.*]]: tensor<2x4x3x6xf32>, %[[M:.*]]: tensor<2x5xi1>)
func.func @attention(%q: tensor<2x4x3x8xf32>, %k: tensor<2x4x5x8xf32>,
                     %v: tensor<2x4x5x6xf32>, %o: tensor<2x4x3x6xf32>,
                     %do: tensor<2x4x3x6xf32>, %m: tensor<2x5xi1>)
    -> (tensor<2x4x3xf32>, tensor<2x4x3xf32>, tensor<2x4x3x8xf32>,
        tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>, tensor<2x4x3x8xf32>) {
  // CHECK: %[[L0:.*]] = loom.attention_lse %[[Q]], %[[K]], causal = true, scale = 1.250000e-01 : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32> -> tensor<2x4x3xf32>
  %l0 = loom.attention_lse %q, %k, causal = true, scale = 1.250000e-01
      : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32> -> tensor<2x4x3xf32>
  // CHECK: %[[L1:.*]] = loom.attention_lse %[[Q]], %[[K]], mask %[[M]], causal = false, scale = 5.000000e-01 : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x5xi1> -> tensor<2x4x3xf32>
  %l1 = loom.attention_lse %q, %k, mask %m, causal = false, scale = 5.000000e-01
      : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x5xi1> -> tensor<2x4x3xf32>
  // CHECK: %[[DQ:[[:alnum:]_]+]], %[[DK:[[:alnum:]_]+]], %[[DV:[[:alnum:]_]+]] = loom.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[L0]], %[[DO]], causal = true, scale = 1.250000e-01 : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>, tensor<2x4x3x6xf32>, tensor<2x4x3xf32>{{$}}
  %dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %l0, %do, causal = true,
      scale = 1.250000e-01
      : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>,
        tensor<2x4x3x6xf32>, tensor<2x4x3xf32>
  // CHECK: %[[DQ1:[[:alnum:]_]+]], %{{.*}}, %{{.*}} = loom.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[L1]], %[[DO]], mask %[[M]], causal = false, scale = 5.000000e-01 : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>, tensor<2x4x3x6xf32>, tensor<2x4x3xf32>, tensor<2x5xi1>
  %dq1, %dk1, %dv1 = loom.attention_grad %q, %k, %v, %o, %l1, %do, mask %m,
      causal = false, scale = 5.000000e-01
      : tensor<2x4x3x8xf32>, tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>,
        tensor<2x4x3x6xf32>, tensor<2x4x3xf32>, tensor<2x5xi1>
  // CHECK: return %[[L0]], %[[L1]], %[[DQ]], %[[DK]], %[[DV]], %[[DQ1]] :
  return %l0, %l1, %dq, %dk, %dv, %dq1
      : tensor<2x4x3xf32>, tensor<2x4x3xf32>, tensor<2x4x3x8xf32>,
        tensor<2x4x5x8xf32>, tensor<2x4x5x6xf32>, tensor<2x4x3x8xf32>
}

// CHECK-LABEL: func.func @losses_and_norms
// CHECK-SAME: (%[[L:.*]]: tensor<2x3x7xf32>, %[[T:.*]]: tensor<2x3xi32>, %[[DL:.*]]: tensor<f32>, %[[X:.*]]: tensor<2x3x8xbf16>, %[[GA:.*]]: tensor<8xbf16>, %[[DY:.*]]: tensor<2x3x8xbf16>)
func.func @losses_and_norms(%l: tensor<2x3x7xf32>, %t: tensor<2x3xi32>,
                            %dl: tensor<f32>, %x: tensor<2x3x8xbf16>,
                            %g: tensor<8xbf16>, %dy: tensor<2x3x8xbf16>)
    -> (tensor<2x3x7xf32>, tensor<2x3x8xbf16>, tensor<8xbf16>, tensor<8xbf16>,
        tensor<2x3x8xbf16>, tensor<2x3x8xbf16>) {
  // CHECK: %[[CE:.*]] = loom.cross_entropy_grad %[[L]], %[[T]], %[[DL]], ignore_index = -100 : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<f32>
  %0 = loom.cross_entropy_grad %l, %t, %dl, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<f32>
  // CHECK: %[[DX:[[:alnum:]_]+]], %[[DG:[[:alnum:]_]+]], %[[DB:[[:alnum:]_]+]] = loom.layer_norm_grad %[[X]], %[[GA]], %[[DY]], eps = 1.000000e-05 : tensor<2x3x8xbf16>, tensor<8xbf16>
  %dx, %dg, %db = loom.layer_norm_grad %x, %g, %dy, eps = 1.000000e-05
      : tensor<2x3x8xbf16>, tensor<8xbf16>
  // CHECK: %[[GE:.*]] = loom.gelu_grad %[[X]], %[[DY]], approximate = true : tensor<2x3x8xbf16>
  %1 = loom.gelu_grad %x, %dy, approximate = true : tensor<2x3x8xbf16>
  // CHECK: %[[GX:.*]] = loom.gelu_grad %[[X]], %[[DY]], approximate = false : tensor<2x3x8xbf16>
  %2 = loom.gelu_grad %x, %dy, approximate = false : tensor<2x3x8xbf16>
  // CHECK: return %[[CE]], %[[DX]], %[[DG]], %[[DB]], %[[GE]], %[[GX]] :
  return %0, %dx, %dg, %db, %1, %2
      : tensor<2x3x7xf32>, tensor<2x3x8xbf16>, tensor<8xbf16>, tensor<8xbf16>,
        tensor<2x3x8xbf16>, tensor<2x3x8xbf16>
}

// CHECK-LABEL: func.func @embedding_and_lstm
func.func @embedding_and_lstm(%ids: tensor<2x3xi32>, %de: tensor<2x3x4xf32>,
    %x: tensor<2x5x3xf32>, %h0: tensor<2x4xf32>, %c0: tensor<2x4xf32>,
    %wih: tensor<3x16xf32>, %whh: tensor<4x16xf32>, %b: tensor<16xf32>,
    %dout: tensor<2x5x4xf32>, %dh: tensor<2x4xf32>, %dc: tensor<2x4xf32>)
    -> (tensor<10x4xf32>, tensor<2x5x3xf32>, tensor<16xf32>) {
  // CHECK: loom.embedding_grad %{{.*}}, %{{.*}}, vocab = 10 : tensor<2x3xi32>, tensor<2x3x4xf32> -> tensor<10x4xf32>
  %0 = loom.embedding_grad %ids, %de, vocab = 10
      : tensor<2x3xi32>, tensor<2x3x4xf32> -> tensor<10x4xf32>
  // CHECK: %[[LX:[[:alnum:]_]+]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LB:[[:alnum:]_]+]] = loom.lstm_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<2x5x4xf32>
  %dx, %dh0, %dc0, %dwih, %dwhh, %db = loom.lstm_grad %x, %h0, %c0, %wih,
      %whh, %b, %dout, %dh, %dc
      : tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
        tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>, tensor<2x5x4xf32>
  // CHECK: return %{{.*}}, %[[LX]], %[[LB]] :
  return %0, %dx, %db : tensor<10x4xf32>, tensor<2x5x3xf32>, tensor<16xf32>
}

// Dynamic dims agree with any size.
// CHECK-LABEL: func.func @dynamic
func.func @dynamic(%q: tensor<?x4x?x8xf32>, %k: tensor<?x4x?x8xf32>,
                   %m: tensor<?x?xi1>) -> tensor<?x4x?xf32> {
  // CHECK: loom.attention_lse %{{.*}}, %{{.*}}, mask %{{.*}}, causal = false, scale = 1.000000e+00 : tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>, tensor<?x?xi1> -> tensor<?x4x?xf32>
  %0 = loom.attention_lse %q, %k, mask %m, causal = false, scale = 1.0
      : tensor<?x4x?x8xf32>, tensor<?x4x?x8xf32>, tensor<?x?xi1>
      -> tensor<?x4x?xf32>
  return %0 : tensor<?x4x?xf32>
}

// -----

// Tests that attention_lse needs q and k of one rank >= 3.
func.func @attention_lse_rank(%q: tensor<3x8xf32>, %k: tensor<5x8xf32>) {
  // expected-error @+1 {{expected q and k of one rank >= 3, got 'tensor<3x8xf32>' and 'tensor<5x8xf32>'}}
  %0 = loom.attention_lse %q, %k, causal = false, scale = 1.0
      : tensor<3x8xf32>, tensor<5x8xf32> -> tensor<3xf32>
  return
}

// -----

// Tests that attention_lse checks the head dim of k against q's.
func.func @attention_lse_head_dim(%q: tensor<2x3x8xf32>, %k: tensor<2x5x4xf32>) {
  // expected-error @+1 {{expected q [..., Tq, D] and k [..., Tk, D]}}
  %0 = loom.attention_lse %q, %k, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x4xf32> -> tensor<2x3xf32>
  return
}

// -----

// Tests that attention_lse's result is [..., Tq].
func.func @attention_lse_result(%q: tensor<2x3x8xf32>, %k: tensor<2x5x8xf32>) {
  // expected-error @+1 {{expected lse of shape [..., Tq] and the element type of q, got 'tensor<2x5xf32>'}}
  %0 = loom.attention_lse %q, %k, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x8xf32> -> tensor<2x5xf32>
  return
}

// -----

// Tests that attention_lse checks the key mask against [B, Tk].
func.func @attention_lse_mask(%q: tensor<2x3x8xf32>, %k: tensor<2x5x8xf32>,
                              %m: tensor<2x3xi1>) {
  // expected-error @+1 {{expected key_mask [B, Tk], got 'tensor<2x3xi1>'}}
  %0 = loom.attention_lse %q, %k, mask %m, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x3xi1> -> tensor<2x3xf32>
  return
}

// -----

// Tests that attention_grad checks v against k.
func.func @attention_grad_v(%q: tensor<2x3x8xf32>, %k: tensor<2x5x8xf32>,
                            %v: tensor<2x4x6xf32>, %o: tensor<2x3x6xf32>,
                            %l: tensor<2x3xf32>) {
  // expected-error @+1 {{expected v [..., Tk, Dv], got 'tensor<2x4x6xf32>'}}
  %0:3 = loom.attention_grad %q, %k, %v, %o, %l, %o, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x4x6xf32>,
        tensor<2x3x6xf32>, tensor<2x3xf32>
  return
}

// -----

// Tests that attention_grad checks out against [..., Tq, Dv].
func.func @attention_grad_out(%q: tensor<2x3x8xf32>, %k: tensor<2x5x8xf32>,
                              %v: tensor<2x5x6xf32>, %o: tensor<2x3x8xf32>,
                              %l: tensor<2x3xf32>) {
  // expected-error @+1 {{expected out [..., Tq, Dv], got 'tensor<2x3x8xf32>'}}
  %0:3 = loom.attention_grad %q, %k, %v, %o, %l, %o, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x5x6xf32>,
        tensor<2x3x8xf32>, tensor<2x3xf32>
  return
}

// -----

// Tests that attention_grad checks lse against [..., Tq].
func.func @attention_grad_lse(%q: tensor<2x3x8xf32>, %k: tensor<2x5x8xf32>,
                              %v: tensor<2x5x6xf32>, %o: tensor<2x3x6xf32>,
                              %l: tensor<2x3xf16>) {
  // expected-error @+1 {{expected lse of shape [..., Tq] and the element type of q, got 'tensor<2x3xf16>'}}
  %0:3 = loom.attention_grad %q, %k, %v, %o, %l, %o, causal = false, scale = 1.0
      : tensor<2x3x8xf32>, tensor<2x5x8xf32>, tensor<2x5x6xf32>,
        tensor<2x3x6xf32>, tensor<2x3xf16>
  return
}

// -----

// Tests that cross_entropy_grad checks targets against logits.
func.func @cross_entropy_grad_targets(%l: tensor<2x3x7xf32>, %t: tensor<2x4xi32>,
                                      %dl: tensor<f32>) {
  // expected-error @+1 {{expected logits [..., V] and targets [...], got 'tensor<2x3x7xf32>' and 'tensor<2x4xi32>'}}
  %0 = loom.cross_entropy_grad %l, %t, %dl, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x4xi32>, tensor<f32>
  return
}

// -----

// Tests that cross_entropy_grad needs a rank-0 d_loss.
func.func @cross_entropy_grad_dloss(%l: tensor<2x3x7xf32>, %t: tensor<2x3xi32>,
                                    %dl: tensor<1xf32>) {
  // expected-error @+1 {{expected d_loss of rank 0 with the logits' element type, got 'tensor<1xf32>'}}
  %0 = loom.cross_entropy_grad %l, %t, %dl, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<1xf32>
  return
}

// -----

// Tests that layer_norm_grad checks gamma against the last dim.
func.func @layer_norm_grad_gamma(%x: tensor<2x8xf32>, %g: tensor<4xf32>) {
  // expected-error @+1 {{expected input [..., D] and gamma [D], got 'tensor<2x8xf32>' and 'tensor<4xf32>'}}
  %0:3 = loom.layer_norm_grad %x, %g, %x, eps = 1.000000e-05
      : tensor<2x8xf32>, tensor<4xf32>
  return
}

// -----

// Tests that layer_norm_grad needs eps >= 0.
func.func @layer_norm_grad_eps(%x: tensor<2x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{expected eps >= 0}}
  %0:3 = loom.layer_norm_grad %x, %g, %x, eps = -1.000000e+00
      : tensor<2x8xf32>, tensor<8xf32>
  return
}

// -----

// Tests that gelu_grad's operands and result have one type (generic form:
// the custom form states a single type).
func.func @gelu_grad_types(%x: tensor<4xf32>, %dy: tensor<5xf32>) {
  // expected-error @+1 {{failed to verify that all of {input, d_result, d_input} have same type}}
  %0 = "loom.gelu_grad"(%x, %dy) <{approximate = true}>
      : (tensor<4xf32>, tensor<5xf32>) -> tensor<4xf32>
  return
}

// -----

// Tests that embedding_grad needs vocab >= 1.
func.func @embedding_grad_vocab(%ids: tensor<3xi32>, %dy: tensor<3x4xf32>) {
  // expected-error @+1 {{expected vocab >= 1, got 0}}
  %0 = loom.embedding_grad %ids, %dy, vocab = 0
      : tensor<3xi32>, tensor<3x4xf32> -> tensor<0x4xf32>
  return
}

// -----

// Tests that embedding_grad checks d_result against ids.
func.func @embedding_grad_dy(%ids: tensor<2x3xi32>, %dy: tensor<3x4xf32>) {
  // expected-error @+1 {{expected d_result [..., D] over ids [...], got 'tensor<3x4xf32>' and 'tensor<2x3xi32>'}}
  %0 = loom.embedding_grad %ids, %dy, vocab = 10
      : tensor<2x3xi32>, tensor<3x4xf32> -> tensor<10x4xf32>
  return
}

// -----

// Tests that embedding_grad's result is [vocab, D].
func.func @embedding_grad_table(%ids: tensor<3xi32>, %dy: tensor<3x4xf32>) {
  // expected-error @+1 {{expected d_table of type [vocab, D] with d_result's element type, got 'tensor<9x4xf32>'}}
  %0 = loom.embedding_grad %ids, %dy, vocab = 10
      : tensor<3xi32>, tensor<3x4xf32> -> tensor<9x4xf32>
  return
}

// -----

// Tests that lstm_grad needs input [B, T, I] and h0 [B, H].
func.func @lstm_grad_rank(%x: tensor<2x3xf32>, %h: tensor<2x4xf32>,
                          %wih: tensor<3x16xf32>, %whh: tensor<4x16xf32>,
                          %b: tensor<16xf32>, %dout: tensor<2x5x4xf32>) {
  // expected-error @+1 {{expected input [B, T, I] and h0 [B, H], got 'tensor<2x3xf32>' and 'tensor<2x4xf32>'}}
  %0:6 = loom.lstm_grad %x, %h, %h, %wih, %whh, %b, %dout, %h, %h
      : tensor<2x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x16xf32>,
        tensor<4x16xf32>, tensor<16xf32>, tensor<2x5x4xf32>
  return
}

// -----

// Tests that lstm_grad checks the weights against I and H.
func.func @lstm_grad_weights(%x: tensor<1x2x3xf32>, %h: tensor<1x2xf32>,
                             %wih: tensor<3x6xf32>, %whh: tensor<2x8xf32>,
                             %b: tensor<8xf32>, %dout: tensor<1x2x2xf32>) {
  // expected-error @+1 {{expected w_ih [I, 4H], w_hh [H, 4H] and bias [4H]}}
  %0:6 = loom.lstm_grad %x, %h, %h, %wih, %whh, %b, %dout, %h, %h
      : tensor<1x2x3xf32>, tensor<1x2xf32>, tensor<1x2xf32>,
        tensor<3x6xf32>, tensor<2x8xf32>, tensor<8xf32>, tensor<1x2x2xf32>
  return
}

// -----

// Tests that lstm_grad checks d_outputs against [B, T, H].
func.func @lstm_grad_dout(%x: tensor<2x5x3xf32>, %h: tensor<2x4xf32>,
                          %wih: tensor<3x16xf32>, %whh: tensor<4x16xf32>,
                          %b: tensor<16xf32>, %dout: tensor<2x6x4xf32>) {
  // expected-error @+1 {{expected d_outputs [B, T, H], got 'tensor<2x6x4xf32>'}}
  %0:6 = loom.lstm_grad %x, %h, %h, %wih, %whh, %b, %dout, %h, %h
      : tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x16xf32>,
        tensor<4x16xf32>, tensor<16xf32>, tensor<2x6x4xf32>
  return
}

// -----

// CHECK-LABEL: func.func @shared_logsumexp
// CHECK-SAME: (%[[L:.*]]: tensor<2x3x7xf32>, %[[T:.*]]: tensor<2x3xi32>, %[[DL:.*]]: tensor<f32>)
func.func @shared_logsumexp(%l: tensor<2x3x7xf32>, %t: tensor<2x3xi32>,
                            %dl: tensor<f32>)
    -> (tensor<f32>, tensor<2x3x7xf32>) {
  // CHECK: %[[LSE:.*]] = loom.logsumexp %[[L]] : tensor<2x3x7xf32> -> tensor<2x3xf32>
  %lse = loom.logsumexp %l : tensor<2x3x7xf32> -> tensor<2x3xf32>
  // CHECK: loom.cross_entropy %[[L]], %[[T]], lse %[[LSE]], ignore_index = -100 : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<2x3xf32>
  %0 = loom.cross_entropy %l, %t, lse %lse, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<2x3xf32>
  // CHECK: loom.cross_entropy_grad %[[L]], %[[T]], %[[DL]], lse %[[LSE]], ignore_index = -100 : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<f32>, tensor<2x3xf32>
  %1 = loom.cross_entropy_grad %l, %t, %dl, lse %lse, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<f32>, tensor<2x3xf32>
  return %0, %1 : tensor<f32>, tensor<2x3x7xf32>
}

// -----

// Tests that logsumexp's result drops the last dim.
func.func @logsumexp_shape(%l: tensor<2x3x7xf32>) {
  // expected-error @+1 {{expected lse of shape [...] for rows [..., V] of 'tensor<2x3x7xf32>', got 'tensor<2x7xf32>'}}
  %0 = loom.logsumexp %l : tensor<2x3x7xf32> -> tensor<2x7xf32>
  return
}

// -----

// Tests that cross_entropy_grad checks its lse against the logits' rows.
func.func @cross_entropy_grad_lse(%l: tensor<2x3x7xf32>, %t: tensor<2x3xi32>,
                                  %dl: tensor<f32>, %lse: tensor<2x3xbf16>) {
  // expected-error @+1 {{expected lse of shape [...] for rows [..., V] of 'tensor<2x3x7xf32>', got 'tensor<2x3xbf16>'}}
  %0 = loom.cross_entropy_grad %l, %t, %dl, lse %lse, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<f32>, tensor<2x3xbf16>
  return
}

// -----

// Tests that cross_entropy checks its lse against the logits' rows.
func.func @cross_entropy_lse(%l: tensor<2x3x7xf32>, %t: tensor<2x3xi32>,
                             %lse: tensor<3xf32>) {
  // expected-error @+1 {{expected lse of shape [...] for rows [..., V] of 'tensor<2x3x7xf32>', got 'tensor<3xf32>'}}
  %0 = loom.cross_entropy %l, %t, lse %lse, ignore_index = -100
      : tensor<2x3x7xf32>, tensor<2x3xi32>, tensor<3xf32>
  return
}
