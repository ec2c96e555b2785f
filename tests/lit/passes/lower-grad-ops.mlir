// RUN: loom-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(func.func(loom-lower-to-linalg))' | FileCheck %s

// The fused backward ops of ir/LoomGradOps.td (passes/LowerToLinalg/Backward.cpp).

// Tests attention_lse: q @ k^T as a batch_matmul over [B*H], one generic that
// scales and masks (causal: j <= i + Tk - Tq; key mask read at (b, j)) with
// -inf, then max, sum of exp(s - max) against the max broadcast over keys,
// and max + log(sum) with empty rows (sum 0) giving 0.
// CHECK-DAG: #[[$ID4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$MASK:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d3)>
// CHECK-DAG: #[[$ROW:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[$BCAST:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>
// CHECK-LABEL: func.func @attention_lse
// CHECK-SAME: %[[M:[a-z0-9]+]]: tensor<2x6xi1>
// CHECK: %[[KT:.*]] = linalg.transpose ins(%{{.*}} : tensor<6x6x8xf32>) outs(%{{.*}} : tensor<6x8x6xf32>) permutation = [0, 2, 1]
// CHECK: %[[S:.*]] = linalg.batch_matmul ins(%{{.*}}, %[[KT]] : tensor<6x4x8xf32>, tensor<6x8x6xf32>)
// CHECK: %[[MASKED:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$MASK]], #[[$ID4]]]
// CHECK-SAME: ins(%{{.*}}, %[[M]] : tensor<2x3x4x6xf32>, tensor<2x6xi1>)
// CHECK: arith.mulf
// CHECK: linalg.index 2
// CHECK: linalg.index 3
// CHECK: arith.cmpi sle
// CHECK: arith.andi
// CHECK: arith.select
// CHECK: %[[MAX:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[MASKED]]
// CHECK: arith.maximumf
// CHECK: %[[SAFE:.*]] = linalg.generic
// CHECK-SAME: ins(%[[MAX]]
// CHECK: %[[SAFE4:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 3, 4, 1]
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$BCAST]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[MASKED]], %[[SAFE4]]
// CHECK: arith.subf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.addf
// CHECK: %[[LSE:.*]] = linalg.generic
// CHECK-SAME: ins(%[[SAFE]], %[[SUM]]
// CHECK: math.log
// CHECK: arith.select
// CHECK: return %[[LSE]] : tensor<2x3x4xf32>
// CHECK-NOT: loom.
func.func @attention_lse(%q: tensor<2x3x4x8xf32>, %k: tensor<2x3x6x8xf32>,
                         %m: tensor<2x6xi1>) -> tensor<2x3x4xf32> {
  %0 = loom.attention_lse %q, %k, mask %m, causal = true, scale = 0.25
      : tensor<2x3x4x8xf32>, tensor<2x3x6x8xf32>, tensor<2x6xi1>
      -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// Tests attention_grad: P = exp(scale * q k^T - lse) recomputed in one
// generic (lse broadcast over keys), delta = rowsum(dO * O) without
// materializing the product, then the four products as batch_matmuls with
// explicit transposes: dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q, and
// dS = P * (dP - delta) * scale in one generic.
// CHECK-DAG: #[[$ID4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$LSE:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>
// CHECK-DAG: #[[$ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[$ROW:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$DELTA:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
// CHECK-LABEL: func.func @attention_grad
// CHECK-SAME: (%[[Q:[a-z0-9]+]]: tensor<2x4x8xf32>, %[[K:[a-z0-9]+]]: tensor<2x6x8xf32>, %[[V:[a-z0-9]+]]: tensor<2x6x5xf32>, %[[O:[a-z0-9]+]]: tensor<2x4x5xf32>, %[[L:[a-z0-9]+]]: tensor<2x4xf32>, %[[DO:[a-z0-9]+]]: tensor<2x4x5xf32>)
// CHECK: %[[KT:.*]] = linalg.transpose ins(%[[K]] : tensor<2x6x8xf32>)
// CHECK: %[[S:.*]] = linalg.batch_matmul ins(%[[Q]], %[[KT]] : tensor<2x4x8xf32>, tensor<2x8x6xf32>)
// CHECK: %[[P4:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$LSE]], #[[$ID4]]]
// CHECK-SAME: tensor<2x1x4x6xf32>, tensor<2x1x4x1xf32>
// CHECK: arith.mulf
// CHECK-NEXT: arith.subf
// CHECK-NEXT: math.exp
// CHECK: %[[P:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 6]
// CHECK: %[[D:.*]] = linalg.generic {indexing_maps = [#[[$ID3]], #[[$ID3]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[DO]], %[[O]] :
// CHECK: arith.mulf
// CHECK-NEXT: arith.addf
// CHECK: %[[PT:.*]] = linalg.transpose ins(%[[P]] : tensor<2x4x6xf32>)
// CHECK: %[[DV:.*]] = linalg.batch_matmul ins(%[[PT]], %[[DO]] : tensor<2x6x4xf32>, tensor<2x4x5xf32>)
// CHECK: %[[VT:.*]] = linalg.transpose ins(%[[V]] : tensor<2x6x5xf32>)
// CHECK: %[[DP:.*]] = linalg.batch_matmul ins(%[[DO]], %[[VT]] : tensor<2x4x5xf32>, tensor<2x5x6xf32>)
// CHECK: %[[DS:.*]] = linalg.generic {indexing_maps = [#[[$ID3]], #[[$ID3]], #[[$DELTA]], #[[$ID3]]], {{.*}} ins(%[[P]], %[[DP]], %{{.*}} : tensor<2x4x6xf32>, tensor<2x4x6xf32>, tensor<2x4x1xf32>)
// CHECK: arith.subf
// CHECK-NEXT: arith.mulf
// CHECK-NEXT: arith.mulf
// CHECK: %[[DQ:.*]] = linalg.batch_matmul ins(%[[DS]], %[[K]] : tensor<2x4x6xf32>, tensor<2x6x8xf32>)
// CHECK: %[[DST:.*]] = linalg.transpose ins(%[[DS]] : tensor<2x4x6xf32>)
// CHECK: %[[DK:.*]] = linalg.batch_matmul ins(%[[DST]], %[[Q]] : tensor<2x6x4xf32>, tensor<2x4x8xf32>)
// CHECK: return %[[DQ]], %[[DK]], %[[DV]]
// CHECK-NOT: loom.
func.func @attention_grad(%q: tensor<2x4x8xf32>, %k: tensor<2x6x8xf32>,
                          %v: tensor<2x6x5xf32>, %o: tensor<2x4x5xf32>,
                          %lse: tensor<2x4xf32>, %do: tensor<2x4x5xf32>)
    -> (tensor<2x4x8xf32>, tensor<2x6x8xf32>, tensor<2x6x5xf32>) {
  %dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %lse, %do,
      causal = false, scale = 0.25
      : tensor<2x4x8xf32>, tensor<2x6x8xf32>, tensor<2x6x5xf32>,
        tensor<2x4x5xf32>, tensor<2x4xf32>
  return %dq, %dk, %dv
      : tensor<2x4x8xf32>, tensor<2x6x8xf32>, tensor<2x6x5xf32>
}

// -----

// Tests cross_entropy_grad: the shared softmax over rows [N, V], the number
// of kept targets counted as i32, d_loss / count, then one generic:
// (p - (column == target)) * factor, 0 on ignored rows.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$T:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-DAG: #[[$SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @cross_entropy_grad
// CHECK-SAME: %[[D:[a-z0-9]+]]: tensor<f32>
// CHECK: arith.maximumf
// CHECK: %[[E:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[E]] :
// CHECK: %[[P:.*]] = linalg.generic {{.*}} ins(%[[E]], %{{.*}} : tensor<6x16xf32>, tensor<6x1xf32>)
// CHECK: arith.divf
// CHECK: %[[T:.*]] = tensor.expand_shape %{{.*}} output_shape [6, 1] : tensor<6xi32> into tensor<6x1xi32>
// CHECK: %[[COUNT:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$SCALAR]]], iterator_types = ["reduction", "reduction"]} ins(%[[T]] : tensor<6x1xi32>) outs(%{{.*}} : tensor<i32>)
// CHECK: arith.cmpi ne, %{{.*}}, %c-100_i32
// CHECK: arith.addi
// CHECK: arith.select
// CHECK: %[[F:.*]] = linalg.generic {{.*}} ins(%[[D]], %[[COUNT]] : tensor<f32>, tensor<i32>)
// CHECK: arith.sitofp
// CHECK-NEXT: arith.divf
// CHECK: %[[G:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$T]], #[[$SCALAR]], #[[$ID]]], {{.*}} ins(%[[P]], %[[T]], %[[F]] : tensor<6x16xf32>, tensor<6x1xi32>, tensor<f32>)
// CHECK: linalg.index 1
// CHECK: arith.cmpi eq
// CHECK: arith.subf
// CHECK: arith.mulf
// CHECK: arith.cmpi ne
// CHECK: arith.select
// CHECK: %[[R:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 3, 16]
// CHECK: return %[[R]]
// CHECK-NOT: loom.
func.func @cross_entropy_grad(%l: tensor<2x3x16xf32>, %t: tensor<2x3xi32>,
                              %d: tensor<f32>) -> tensor<2x3x16xf32> {
  %0 = loom.cross_entropy_grad %l, %t, %d, ignore_index = -100
      : tensor<2x3x16xf32>, tensor<2x3xi32>, tensor<f32>
  return %0 : tensor<2x3x16xf32>
}

// -----

// Tests layer_norm_grad: the row statistics are reductions over D (products
// reduced without being materialized), xhat = centered * rstd, g = dy *
// gamma, d_input in one generic, d_gamma and d_beta reductions over rows.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$ROWS:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[$COLS:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[$STAT:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-LABEL: func.func @layer_norm_grad
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<6x8xf32>, %[[GAMMA:[a-z0-9]+]]: tensor<8xf32>, %[[DY:[a-z0-9]+]]: tensor<6x8xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]} ins(%[[X]] :
// CHECK: %[[C:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$STAT]], #[[$ID]]]{{.*}} ins(%[[X]],
// CHECK: arith.subf
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]} ins(%[[C]], %[[C]] :
// CHECK: %[[RSTD:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<6x1xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: arith.addf
// CHECK-NEXT: math.rsqrt
// CHECK: %[[XHAT:.*]] = linalg.generic {{.*}} ins(%[[C]], %[[RSTD]] :
// CHECK: %[[G:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$COLS]], #[[$ID]]]{{.*}} ins(%[[DY]], %[[GAMMA]] :
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]} ins(%[[G]] :
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]} ins(%[[G]], %[[XHAT]] :
// CHECK: %[[DX:.*]] = linalg.generic {{.*}} ins(%[[G]], %{{.*}}, %[[XHAT]], %{{.*}}, %[[RSTD]] :
// CHECK: %[[DG:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ID]], #[[$COLS]]], iterator_types = ["reduction", "parallel"]} ins(%[[DY]], %[[XHAT]] :
// CHECK: %[[DB:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$COLS]]], iterator_types = ["reduction", "parallel"]} ins(%[[DY]] :
// CHECK: return %[[DX]], %[[DG]], %[[DB]]
// CHECK-NOT: loom.
func.func @layer_norm_grad(%x: tensor<6x8xf32>, %g: tensor<8xf32>,
                           %dy: tensor<6x8xf32>)
    -> (tensor<6x8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %dx, %dg, %db = loom.layer_norm_grad %x, %g, %dy, eps = 1.0e-05
      : tensor<6x8xf32>, tensor<8xf32>
  return %dx, %dg, %db : tensor<6x8xf32>, tensor<8xf32>, tensor<8xf32>
}

// -----

// Tests gelu_grad: one elementwise generic per form; the erf form is
// Phi(x) + x phi(x), the tanh form goes through e = exp(-2|u|) instead of
// tanh(u) (accurate where |tanh u| rounds to 1); its 1 / (1 + e), with
// 1 + e in [1, 2], may be a reciprocal estimate (arcp ninf).
// CHECK-LABEL: func.func @gelu_grad
// CHECK: %[[ERF:.*]] = linalg.generic
// CHECK: math.erf
// CHECK: math.exp
// CHECK: linalg.yield
// CHECK: %[[TANH:.*]] = linalg.generic
// CHECK-NOT: math.tanh
// CHECK: math.absf
// CHECK: math.exp
// CHECK: arith.divf {{.*}} fastmath<ninf,arcp>
// CHECK: arith.cmpf oge
// CHECK: arith.select
// CHECK: linalg.yield
// CHECK: return %[[ERF]], %[[TANH]]
// CHECK-NOT: loom.
func.func @gelu_grad(%x: tensor<4x8xf32>, %dy: tensor<4x8xf32>)
    -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = loom.gelu_grad %x, %dy, approximate = false : tensor<4x8xf32>
  %1 = loom.gelu_grad %x, %dy, approximate = true : tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Tests embedding_grad: a zero-filled table, then an scf.for over the N
// positions that adds row n of d_result into row ids[n] (clamped into the
// table) in place: O(N * D).
// CHECK-DAG: #[[$ID1:.*]] = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @embedding_grad
// CHECK: %[[DY:.*]] = tensor.expand_shape %{{.*}} output_shape [6, 8]
// CHECK: %[[IDS:.*]] = tensor.collapse_shape %{{.*}} : tensor<2x3xi32> into tensor<6xi32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<10x8xf32>)
// CHECK: %[[R:.*]] = scf.for %[[N:.*]] = %c0 to %c6 step %c1 iter_args(%[[T:.*]] = %[[ZERO]]) -> (tensor<10x8xf32>)
// CHECK: %[[RAW:.*]] = tensor.extract %[[IDS]][%[[N]]]
// CHECK: arith.index_cast %[[RAW]]
// CHECK: arith.maxsi
// CHECK: %[[ID:.*]] = arith.minsi %{{.*}}, %c9
// CHECK: %[[ROW:.*]] = tensor.extract_slice %[[T]][%[[ID]], 0] [1, 8] [1, 1] : tensor<10x8xf32> to tensor<8xf32>
// CHECK: %[[GRAD:.*]] = tensor.extract_slice %[[DY]][%[[N]], 0] [1, 8] [1, 1]
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[$ID1]], #[[$ID1]]], iterator_types = ["parallel"]} ins(%[[GRAD]] : tensor<8xf32>) outs(%[[ROW]] : tensor<8xf32>)
// CHECK: arith.addf
// CHECK: %[[NEW:.*]] = tensor.insert_slice %[[SUM]] into %[[T]][%[[ID]], 0] [1, 8] [1, 1]
// CHECK: scf.yield %[[NEW]]
// CHECK: return %[[R]]
// CHECK-NOT: loom.
func.func @embedding_grad(%ids: tensor<2x3xi32>, %dy: tensor<2x3x8xf32>)
    -> tensor<10x8xf32> {
  %0 = loom.embedding_grad %ids, %dy, vocab = 10
      : tensor<2x3xi32>, tensor<2x3x8xf32> -> tensor<10x8xf32>
  return %0 : tensor<10x8xf32>
}

// -----

// Tests lstm_grad: one x @ w_ih matmul for every step, a forward scf.for
// that carries the gates [B, T, 4H], hs and cs [B, T+1, H] (step t reads
// index t, writes t+1) and the h @ w_hh buffer; a reverse scf.for (t = T-1-s)
// with one cell generic (dc read from its out) and dh = dz_t @ w_hh^T as
// its only product; then d_input, d_w_ih, d_w_hh as matmuls over B*T rows
// and d_bias as a reduction.
// CHECK-LABEL: func.func @lstm_grad
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<2x5x3xf32>, %[[H0:[a-z0-9]+]]: tensor<2x4xf32>, %[[C0:[a-z0-9]+]]: tensor<2x4xf32>, %[[WIH:[a-z0-9]+]]: tensor<3x16xf32>, %[[WHH:[a-z0-9]+]]: tensor<4x16xf32>, %[[B:[a-z0-9]+]]: tensor<16xf32>, %[[DOUT:[a-z0-9]+]]: tensor<2x5x4xf32>, %[[DHN:[a-z0-9]+]]: tensor<2x4xf32>, %[[DCN:[a-z0-9]+]]: tensor<2x4xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %[[WIH]] : tensor<10x3xf32>, tensor<3x16xf32>)
// CHECK: %[[HS0:.*]] = tensor.insert_slice %[[H0]] into %{{.*}}[0, 0, 0] [2, 1, 4] [1, 1, 1] : tensor<2x4xf32> into tensor<2x6x4xf32>
// CHECK: %[[CS0:.*]] = tensor.insert_slice %[[C0]] into %{{.*}}[0, 0, 0] [2, 1, 4] [1, 1, 1] : tensor<2x4xf32> into tensor<2x6x4xf32>
// CHECK: %[[FWD:.*]]:4 = scf.for %[[T:.*]] = %c0 to %c5 step %c1 iter_args(%[[GATES:.*]] = %{{.*}}, %[[HS:.*]] = %[[HS0]], %[[CS:.*]] = %[[CS0]], %[[HW:.*]] = %{{.*}}) -> (tensor<2x5x16xf32>, tensor<2x6x4xf32>, tensor<2x6x4xf32>, tensor<2x16xf32>)
// CHECK: %[[NEXT:.*]] = arith.addi %[[T]], %c1
// CHECK: %[[HPREV:.*]] = tensor.extract_slice %[[HS]][0, %[[T]], 0] [2, 1, 4] [1, 1, 1]
// CHECK: %[[ZHW:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[HW]] : tensor<2x16xf32>)
// CHECK: %[[MM:.*]] = linalg.matmul ins(%[[HPREV]], %[[WHH]] : tensor<2x4xf32>, tensor<4x16xf32>) outs(%[[ZHW]] : tensor<2x16xf32>)
// CHECK: %[[CELL:.*]]:6 = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel"]
// CHECK-COUNT-3: math.tanh
// CHECK: math.fma
// CHECK: math.tanh
// CHECK: linalg.yield
// CHECK: tensor.insert_slice %[[CELL]]#2 into %[[GATES]][0, %[[T]], 0]
// CHECK: tensor.insert_slice %[[CELL]]#3 into %{{.*}}[0, %[[T]], 4]
// CHECK: tensor.insert_slice %[[CELL]]#4 into %{{.*}}[0, %[[T]], 8]
// CHECK: %[[G3:.*]] = tensor.insert_slice %[[CELL]]#5 into %{{.*}}[0, %[[T]], 12]
// CHECK: %[[HSN:.*]] = tensor.insert_slice %[[CELL]]#0 into %[[HS]][0, %[[NEXT]], 0]
// CHECK: %[[CSN:.*]] = tensor.insert_slice %[[CELL]]#1 into %[[CS]][0, %[[NEXT]], 0]
// CHECK: scf.yield %[[G3]], %[[HSN]], %[[CSN]], %[[MM]]
// CHECK: %[[WHHT:.*]] = linalg.transpose ins(%[[WHH]] : tensor<4x16xf32>) outs(%{{.*}} : tensor<16x4xf32>) permutation = [1, 0]
// CHECK: %[[BWD:.*]]:3 = scf.for %[[S:.*]] = %c0 to %c5 step %c1 iter_args(%[[DH:.*]] = %[[DHN]], %[[DC:.*]] = %[[DCN]], %[[DZ:.*]] = %{{.*}}) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x5x16xf32>)
// CHECK: %[[TB:.*]] = arith.subi %c4, %[[S]]
// CHECK: tensor.extract_slice %[[DOUT]][0, %[[TB]], 0] [2, 1, 4]
// CHECK: tensor.extract_slice %[[FWD]]#0[0, %[[TB]], 12] [2, 1, 4]
// CHECK: %[[CP:.*]] = tensor.extract_slice %[[FWD]]#2[0, %[[TB]], 0] [2, 1, 4]
// CHECK: %[[BCELL:.*]]:5 = linalg.generic
// CHECK-SAME: ins(%[[DH]], {{.*}}, %[[CP]] : {{.*}}) outs(%[[DC]], {{.*}})
// CHECK: math.tanh
// CHECK: linalg.yield
// CHECK: tensor.insert_slice %[[BCELL]]#1 into %[[DZ]][0, %[[TB]], 0]
// CHECK: %[[DZN:.*]] = tensor.insert_slice %[[BCELL]]#4 into %{{.*}}[0, %[[TB]], 12]
// CHECK: %[[DZT:.*]] = tensor.extract_slice %[[DZN]][0, %[[TB]], 0] [2, 1, 16]
// CHECK: %[[ZDH:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[DH]] : tensor<2x4xf32>)
// CHECK: %[[NDH:.*]] = linalg.matmul ins(%[[DZT]], %[[WHHT]] : tensor<2x16xf32>, tensor<16x4xf32>) outs(%[[ZDH]] : tensor<2x4xf32>)
// CHECK: scf.yield %[[NDH]], %[[BCELL]]#0, %[[DZN]]
// CHECK: %[[DZR:.*]] = tensor.expand_shape %{{.*}} output_shape [10, 16]
// CHECK: %[[WIHT:.*]] = linalg.transpose ins(%[[WIH]] : tensor<3x16xf32>)
// CHECK: linalg.matmul ins(%[[DZR]], %[[WIHT]] : tensor<10x16xf32>, tensor<16x3xf32>)
// CHECK: linalg.transpose ins(%[[X]] : tensor<2x5x3xf32>) outs(%{{.*}} : tensor<3x2x5xf32>) permutation = [2, 0, 1]
// CHECK: %[[DWIH:.*]] = linalg.matmul ins(%{{.*}}, %[[DZR]] : tensor<3x10xf32>, tensor<10x16xf32>)
// CHECK: %[[HPREVS:.*]] = tensor.extract_slice %[[FWD]]#1[0, 0, 0] [2, 5, 4] [1, 1, 1] : tensor<2x6x4xf32> to tensor<2x5x4xf32>
// CHECK: linalg.transpose ins(%[[HPREVS]] : tensor<2x5x4xf32>) outs(%{{.*}} : tensor<4x2x5xf32>) permutation = [2, 0, 1]
// CHECK: %[[DWHH:.*]] = linalg.matmul ins(%{{.*}}, %[[DZR]] : tensor<4x10xf32>, tensor<10x16xf32>)
// CHECK: %[[DB:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel"]} ins(%[[DZR]] : tensor<10x16xf32>)
// CHECK: return %{{.*}}, %[[BWD]]#0, %[[BWD]]#1, %[[DWIH]], %[[DWHH]], %[[DB]]
// CHECK-NOT: loom.
func.func @lstm_grad(%x: tensor<2x5x3xf32>, %h0: tensor<2x4xf32>,
                     %c0: tensor<2x4xf32>, %wih: tensor<3x16xf32>,
                     %whh: tensor<4x16xf32>, %b: tensor<16xf32>,
                     %dout: tensor<2x5x4xf32>, %dh: tensor<2x4xf32>,
                     %dc: tensor<2x4xf32>)
    -> (tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
        tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>) {
  %0:6 = loom.lstm_grad %x, %h0, %c0, %wih, %whh, %b, %dout, %dh, %dc
      : tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
        tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>,
        tensor<2x5x4xf32>
  return %0#0, %0#1, %0#2, %0#3, %0#4, %0#5
      : tensor<2x5x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
        tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>
}

// -----

// Tests that an op whose result is static but an operand is dynamic is
// refused before any pattern runs, naming the operand's type.
func.func @dynamic_operand(%q: tensor<2x4x8xf32>, %k: tensor<2x?x8xf32>)
    -> tensor<2x4xf32> {
  // expected-error @+1 {{cannot lower an op with the dynamic type 'tensor<2x?x8xf32>'; bind the symbolic dims first (loom-specialize)}}
  %0 = loom.attention_lse %q, %k, causal = false, scale = 0.25
      : tensor<2x4x8xf32>, tensor<2x?x8xf32> -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

// Tests cross_entropy_grad with a shared lse: no softmax of its own, one
// generic computes exp(x - lse) - onehot, scaled, from the logits.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$ROW:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-DAG: #[[$SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @cross_entropy_grad_lse
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<6x16xf32>, %[[TV:[a-z0-9]+]]: tensor<6xi32>, %[[D:[a-z0-9]+]]: tensor<f32>, %[[LV:[a-z0-9]+]]: tensor<6xf32>)
// CHECK-NOT: arith.maximumf
// CHECK-DAG: %[[T:.*]] = tensor.expand_shape %[[TV]] {{.*}} into tensor<6x1xi32>
// CHECK-DAG: %[[LSE:.*]] = tensor.expand_shape %[[LV]] {{.*}} into tensor<6x1xf32>
// CHECK: %[[G:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]], #[[$SCALAR]], #[[$ROW]], #[[$ID]]], {{.*}} ins(%[[X]], %[[T]], %{{.*}}, %[[LSE]] : tensor<6x16xf32>, tensor<6x1xi32>, tensor<f32>, tensor<6x1xf32>)
// CHECK: arith.subf
// CHECK-NEXT: math.exp
// CHECK: return %[[G]]
func.func @cross_entropy_grad_lse(%l: tensor<6x16xf32>, %t: tensor<6xi32>,
                                  %d: tensor<f32>, %lse: tensor<6xf32>)
    -> tensor<6x16xf32> {
  %0 = loom.cross_entropy_grad %l, %t, %d, lse %lse, ignore_index = -100
      : tensor<6x16xf32>, tensor<6xi32>, tensor<f32>, tensor<6xf32>
  return %0 : tensor<6x16xf32>
}

// -----

// Tests logsumexp: a max over each row, one exp-and-add reduction, then
// log(sum) + max per row.
// CHECK-LABEL: func.func @logsumexp
// CHECK: arith.maximumf
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<6x16xf32>, tensor<6xf32>)
// CHECK: math.exp
// CHECK: arith.addf
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<6xf32>, tensor<6xf32>)
// CHECK: math.log
// CHECK-NEXT: arith.addf
// CHECK: tensor.expand_shape {{.*}} output_shape [2, 3]
// CHECK-NOT: loom.
func.func @logsumexp(%l: tensor<2x3x16xf32>) -> tensor<2x3xf32> {
  %0 = loom.logsumexp %l : tensor<2x3x16xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
