// RUN: loom-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(func.func(loom-lower-to-linalg))' | FileCheck %s

// Tests that a broadcasting add becomes one parallel generic over the result:
// the rank-2 operand reads the trailing dims and the size-1 dim of the rank-3
// operand reads index 0.
// CHECK-DAG: #[[$LHS:.*]] = affine_map<(d0, d1, d2) -> (d0, 0, d2)>
// CHECK-DAG: #[[$RHS:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @add_broadcast
// CHECK-SAME: (%[[A:.*]]: tensor<4x1x8xf32>, %[[B:.*]]: tensor<3x8xf32>)
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4x3x8xf32>
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[$LHS]], #[[$RHS]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[A]], %[[B]] : tensor<4x1x8xf32>, tensor<3x8xf32>) outs(%[[E]] : tensor<4x3x8xf32>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[X]], %[[Y]] : f32
// CHECK-NEXT: linalg.yield %[[S]] : f32
// CHECK: return %[[R]] : tensor<4x3x8xf32>
// CHECK-NOT: loom.
func.func @add_broadcast(%a: tensor<4x1x8xf32>, %b: tensor<3x8xf32>)
    -> tensor<4x3x8xf32> {
  %0 = loom.add %a, %b : tensor<4x1x8xf32>, tensor<3x8xf32>
  return %0 : tensor<4x3x8xf32>
}

// -----

// Tests that integer operands use arith.addi and a rank-0 operand is read
// through an empty map.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @add_int_scalar
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$SCALAR]], #[[$ID]]]
// CHECK-NEXT: ^bb0(%[[X:.*]]: i32, %[[Y:.*]]: i32, %{{.*}}: i32):
// CHECK-NEXT: %[[S:.*]] = arith.addi %[[X]], %[[Y]] : i32
// CHECK-NEXT: linalg.yield %[[S]] : i32
func.func @add_int_scalar(%a: tensor<4x8xi32>, %b: tensor<i32>)
    -> tensor<4x8xi32> {
  %0 = loom.add %a, %b : tensor<4x8xi32>, tensor<i32>
  return %0 : tensor<4x8xi32>
}

// -----

// Tests that a unary op becomes a generic whose body applies the math op.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @exp
// CHECK-SAME: (%[[A:.*]]: tensor<4x8xf32>)
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4x8xf32>
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ID]]], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME: ins(%[[A]] : tensor<4x8xf32>) outs(%[[E]] : tensor<4x8xf32>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[Y:.*]] = math.exp %[[X]] : f32
// CHECK-NEXT: linalg.yield %[[Y]] : f32
// CHECK: return %[[R]]
func.func @exp(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = loom.exp %a : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// Tests both forms of gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// and 0.5 x (1 + erf(x / sqrt(2))).
// CHECK-LABEL: func.func @gelu
// CHECK-DAG: %[[ISQ2:.*]] = arith.constant 0.707106769 : f32
// CHECK-DAG: %[[SQ2PI:.*]] = arith.constant 0.797884583 : f32
// CHECK-DAG: %[[C:.*]] = arith.constant 4.471500e-02 : f32
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[X2:.*]] = arith.mulf %[[X]], %[[X]] : f32
// CHECK-NEXT: %[[X3:.*]] = arith.mulf %[[X]], %[[X2]] : f32
// CHECK-NEXT: %[[CX3:.*]] = arith.mulf %[[X3]], %[[C]] : f32
// CHECK-NEXT: %[[P:.*]] = arith.addf %[[X]], %[[CX3]] : f32
// CHECK-NEXT: %[[SP:.*]] = arith.mulf %[[P]], %[[SQ2PI]] : f32
// CHECK-NEXT: %[[T:.*]] = math.tanh %[[SP]] : f32
// CHECK-NEXT: %[[F:.*]] = arith.addf %[[T]], %[[ONE]] : f32
// CHECK-NEXT: %[[HX:.*]] = arith.mulf %[[X]], %[[HALF]] : f32
// CHECK-NEXT: %[[G:.*]] = arith.mulf %[[HX]], %[[F]] : f32
// CHECK-NEXT: linalg.yield %[[G]] : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[XS:.*]] = arith.mulf %[[X]], %[[ISQ2]] : f32
// CHECK-NEXT: %[[ERF:.*]] = math.erf %[[XS]] : f32
// CHECK-NEXT: %[[F:.*]] = arith.addf %[[ERF]], %[[ONE]] : f32
// CHECK-NEXT: %[[HX:.*]] = arith.mulf %[[X]], %[[HALF]] : f32
// CHECK-NEXT: %[[G:.*]] = arith.mulf %[[HX]], %[[F]] : f32
// CHECK-NEXT: linalg.yield %[[G]] : f32
func.func @gelu(%a: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = loom.gelu %a, approximate = true : tensor<4x8xf32>
  %1 = loom.gelu %a, approximate = false : tensor<4x8xf32>
  return %0, %1 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Tests that compare yields i1 through an ordered cmpf for floats (with a
// broadcast operand) and a signed cmpi for i32.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$ROW:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[$SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @compare
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]], #[[$ID]]]
// CHECK-SAME: outs(%{{.*}} : tensor<4x8xi1>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32, %{{.*}}: i1):
// CHECK-NEXT: %[[C:.*]] = arith.cmpf olt, %[[X]], %[[Y]] : f32
// CHECK-NEXT: linalg.yield %[[C]] : i1
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$SCALAR]], #[[$ID]]]
// CHECK-NEXT: ^bb0(%[[X:.*]]: i32, %[[Y:.*]]: i32, %{{.*}}: i1):
// CHECK-NEXT: %[[C:.*]] = arith.cmpi sge, %[[X]], %[[Y]] : i32
// CHECK-NEXT: linalg.yield %[[C]] : i1
func.func @compare(%a: tensor<4x8xf32>, %b: tensor<8xf32>,
                   %i: tensor<4x8xi32>, %s: tensor<i32>)
    -> (tensor<4x8xi1>, tensor<4x8xi1>) {
  %0 = loom.compare %a, %b, predicate = "lt" : tensor<4x8xf32>, tensor<8xf32>
  %1 = loom.compare %i, %s, predicate = "ge" : tensor<4x8xi32>, tensor<i32>
  return %0, %1 : tensor<4x8xi1>, tensor<4x8xi1>
}

// -----

// Tests casts: a narrowing float cast truncates, an integer becomes a float
// signed, and anything cast to i1 is `x != 0`.
// CHECK-LABEL: func.func @cast
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<4x8xbf16>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: bf16):
// CHECK-NEXT: %[[Y:.*]] = arith.truncf %[[X]] : f32 to bf16
// CHECK-NEXT: linalg.yield %[[Y]] : bf16
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[X:.*]]: i32, %{{.*}}: f32):
// CHECK-NEXT: %[[Y:.*]] = arith.sitofp %[[X]] : i32 to f32
// CHECK-NEXT: linalg.yield %[[Y]] : f32
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: i1):
// CHECK-NEXT: %[[Y:.*]] = arith.cmpf une, %[[X]], %[[ZERO]] : f32
// CHECK-NEXT: linalg.yield %[[Y]] : i1
func.func @cast(%a: tensor<4x8xf32>, %i: tensor<4x8xi32>)
    -> (tensor<4x8xbf16>, tensor<4x8xf32>, tensor<4x8xi1>) {
  %0 = loom.cast %a, to = bf16 : tensor<4x8xf32>
  %1 = loom.cast %i, to = f32 : tensor<4x8xi32>
  %2 = loom.cast %a, to = i1 : tensor<4x8xf32>
  return %0, %1, %2 : tensor<4x8xbf16>, tensor<4x8xf32>, tensor<4x8xi1>
}

// -----

// Tests that a batched input times a rank-2 weight folds the batch into the
// rows: [2, 3, 8] is reshaped to [6, 8], multiplied by one linalg.matmul into a
// zero-filled [6, 4] and reshaped back to [2, 3, 4].
// CHECK-LABEL: func.func @matmul_weight
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x8xf32>, %[[W:.*]]: tensor<8x4xf32>)
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[XF:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1, 2]] : tensor<2x3x8xf32> into tensor<48xf32>
// CHECK: %[[X2:.*]] = tensor.expand_shape %[[XF]] {{\[\[}}0, 1]] output_shape [6, 8] : tensor<48xf32> into tensor<6x8xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<6x4xf32>
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[E]] : tensor<6x4xf32>)
// CHECK: %[[MM:.*]] = linalg.matmul ins(%[[X2]], %[[W]] : tensor<6x8xf32>, tensor<8x4xf32>) outs(%[[INIT]] : tensor<6x4xf32>)
// CHECK: %[[MF:.*]] = tensor.collapse_shape %[[MM]] {{\[\[}}0, 1]] : tensor<6x4xf32> into tensor<24xf32>
// CHECK: %[[R:.*]] = tensor.expand_shape %[[MF]] {{\[\[}}0, 1, 2]] output_shape [2, 3, 4] : tensor<24xf32> into tensor<2x3x4xf32>
// CHECK: return %[[R]]
func.func @matmul_weight(%x: tensor<2x3x8xf32>, %w: tensor<8x4xf32>)
    -> tensor<2x3x4xf32> {
  %0 = loom.matmul %x, %w : tensor<2x3x8xf32>, tensor<8x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

// Tests that equal batch dims are flattened into one linalg.batch_matmul.
// CHECK-LABEL: func.func @batch_matmul
// CHECK-SAME: (%[[A:.*]]: tensor<2x4x3x8xf32>, %[[B:.*]]: tensor<2x4x8x5xf32>)
// CHECK: %[[AF:.*]] = tensor.collapse_shape %[[A]] {{\[\[}}0, 1, 2, 3]]
// CHECK: %[[A3:.*]] = tensor.expand_shape %[[AF]] {{\[\[}}0, 1, 2]] output_shape [8, 3, 8] : tensor<192xf32> into tensor<8x3x8xf32>
// CHECK: %[[BF:.*]] = tensor.collapse_shape %[[B]] {{\[\[}}0, 1, 2, 3]]
// CHECK: %[[B3:.*]] = tensor.expand_shape %[[BF]] {{\[\[}}0, 1, 2]] output_shape [8, 8, 5] : tensor<320xf32> into tensor<8x8x5xf32>
// CHECK: %[[INIT:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<8x3x5xf32>)
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%[[A3]], %[[B3]] : tensor<8x3x8xf32>, tensor<8x8x5xf32>) outs(%[[INIT]] : tensor<8x3x5xf32>)
// CHECK: %[[MF:.*]] = tensor.collapse_shape %[[MM]] {{\[\[}}0, 1, 2]]
// CHECK: %[[R:.*]] = tensor.expand_shape %[[MF]] {{\[\[}}0, 1, 2, 3]] output_shape [2, 4, 3, 5] : tensor<120xf32> into tensor<2x4x3x5xf32>
// CHECK: return %[[R]]
// CHECK-NOT: linalg.matmul
func.func @batch_matmul(%a: tensor<2x4x3x8xf32>, %b: tensor<2x4x8x5xf32>)
    -> tensor<2x4x3x5xf32> {
  %0 = loom.matmul %a, %b : tensor<2x4x3x8xf32>, tensor<2x4x8x5xf32>
  return %0 : tensor<2x4x3x5xf32>
}

// -----

// Tests that a lhs without batch dims is broadcast over the rhs batch by a
// copying generic before the batch_matmul.
// CHECK-DAG: #[[$BCAST:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @batch_matmul_broadcast
// CHECK-SAME: (%[[A:.*]]: tensor<3x8xf32>, %[[B:.*]]: tensor<4x8x5xf32>)
// CHECK: %[[AB:.*]] = linalg.generic {indexing_maps = [#[[$BCAST]], #[[$ID]]]
// CHECK-SAME: ins(%[[A]] : tensor<3x8xf32>) outs(%{{.*}} : tensor<4x3x8xf32>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[X]] : f32
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%[[AB]], %[[B]] : tensor<4x3x8xf32>, tensor<4x8x5xf32>)
// CHECK: return %[[MM]]
func.func @batch_matmul_broadcast(%a: tensor<3x8xf32>, %b: tensor<4x8x5xf32>)
    -> tensor<4x3x5xf32> {
  %0 = loom.matmul %a, %b : tensor<3x8xf32>, tensor<4x8x5xf32>
  return %0 : tensor<4x3x5xf32>
}

// -----

// Tests that transpose becomes linalg.transpose with the same permutation.
// CHECK-LABEL: func.func @transpose
// CHECK-SAME: (%[[A:.*]]: tensor<2x3x4xf32>)
// CHECK: %[[E:.*]] = tensor.empty() : tensor<4x2x3xf32>
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[A]] : tensor<2x3x4xf32>) outs(%[[E]] : tensor<4x2x3xf32>) permutation = [2, 0, 1]
// CHECK: return %[[T]]
func.func @transpose(%a: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = loom.transpose %a, perm = [2, 0, 1] : tensor<2x3x4xf32>
  return %0 : tensor<4x2x3xf32>
}

// -----

// Tests that reduce_sum with keepdim reduces the axes into a zero-filled
// accumulator (dropping them) and reinserts them as size-1 dims.
// CHECK-DAG: #[[$IN:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[$OUT:.*]] = affine_map<(d0, d1, d2) -> (d0)>
// CHECK-LABEL: func.func @reduce_sum_keepdim
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2xf32>
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[E]] : tensor<2xf32>)
// CHECK: %[[S:.*]] = linalg.generic {indexing_maps = [#[[$IN]], #[[$OUT]]], iterator_types = ["parallel", "reduction", "reduction"]}
// CHECK-SAME: ins(%[[X]] : tensor<2x3x4xf32>) outs(%[[INIT]] : tensor<2xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK-NEXT: %[[N:.*]] = arith.addf %[[ACC]], %[[V]] : f32
// CHECK-NEXT: linalg.yield %[[N]] : f32
// CHECK: %[[R:.*]] = tensor.expand_shape %[[S]] {{\[\[}}0, 1, 2]] output_shape [2, 1, 1] : tensor<2xf32> into tensor<2x1x1xf32>
// CHECK: return %[[R]]
func.func @reduce_sum_keepdim(%x: tensor<2x3x4xf32>) -> tensor<2x1x1xf32> {
  %0 = loom.reduce_sum %x, axes = [1, 2], keepdim = true : tensor<2x3x4xf32>
  return %0 : tensor<2x1x1xf32>
}

// -----

// Tests softmax: a max reduction from -inf, exp(x - max) broadcasting the
// kept max, a sum reduction from 0, and a division by the kept sum.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$ROWS:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[$KEPT:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-LABEL: func.func @softmax
// CHECK-SAME: (%[[X:.*]]: tensor<4x6xf32>)
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %[[MINIT:.*]] = linalg.fill ins(%[[NINF]] : f32)
// CHECK: %[[MAX:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]}
// CHECK-SAME: ins(%[[X]] : tensor<4x6xf32>) outs(%[[MINIT]] : tensor<4xf32>)
// CHECK: arith.maximumf
// CHECK: %[[MAXK:.*]] = tensor.expand_shape %[[MAX]] {{\[\[}}0, 1]] output_shape [4, 1]
// CHECK: %[[EXP:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$KEPT]], #[[$ID]]], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME: ins(%[[X]], %[[MAXK]] : tensor<4x6xf32>, tensor<4x1xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %[[M:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[D:.*]] = arith.subf %[[V]], %[[M]] : f32
// CHECK-NEXT: %[[EV:.*]] = math.exp %[[D]] : f32
// CHECK-NEXT: linalg.yield %[[EV]] : f32
// CHECK: %[[SINIT:.*]] = linalg.fill ins(%[[ZERO]] : f32)
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROWS]]], iterator_types = ["parallel", "reduction"]}
// CHECK-SAME: ins(%[[EXP]] : tensor<4x6xf32>) outs(%[[SINIT]] : tensor<4xf32>)
// CHECK: arith.addf
// CHECK: %[[SUMK:.*]] = tensor.expand_shape %[[SUM]] {{\[\[}}0, 1]] output_shape [4, 1]
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$KEPT]], #[[$ID]]]
// CHECK-SAME: ins(%[[EXP]], %[[SUMK]] : tensor<4x6xf32>, tensor<4x1xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[Q:.*]] = arith.divf %[[V]], %[[S]] : f32
// CHECK-NEXT: linalg.yield %[[Q]] : f32
// CHECK: return %[[R]]
func.func @softmax(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %0 = loom.softmax %x, axis = 1 : tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

// Tests layer_norm over the last dim: mean = sum / 8, centered = x - mean,
// var = sum(centered^2) / 8, inv = rsqrt(var + eps), and
// centered * inv * gamma + beta with gamma and beta read along the last dim.
// CHECK-DAG: #[[$ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[$KEPT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
// CHECK-DAG: #[[$LAST:.*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-LABEL: func.func @layer_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[G:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-DAG: %[[EPS:.*]] = arith.constant 9.99999974E-6 : f32
// CHECK-DAG: %[[INVN:.*]] = arith.constant 1.250000e-01 : f32
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]] : tensor<2x4x8xf32>)
// CHECK: %[[MEAN:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<2x4xf32>)
// CHECK: arith.mulf %{{.*}}, %[[INVN]] : f32
// CHECK: %[[MEANK:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 1]
// CHECK: %[[CEN:.*]] = linalg.generic {indexing_maps = [#[[$ID3]], #[[$KEPT]], #[[$ID3]]], {{.*}} ins(%[[X]], %[[MEANK]] :
// CHECK: arith.subf
// CHECK: %[[SQ:.*]] = linalg.generic {{.*}} ins(%[[CEN]] : tensor<2x4x8xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: arith.mulf %[[V]], %[[V]] : f32
// CHECK: %[[SQSUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[SQ]] : tensor<2x4x8xf32>)
// CHECK: %[[VAR:.*]] = linalg.generic {{.*}} ins(%[[SQSUM]] : tensor<2x4xf32>)
// CHECK: arith.mulf %{{.*}}, %[[INVN]] : f32
// CHECK: linalg.generic {{.*}} ins(%[[VAR]] : tensor<2x4xf32>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[VE:.*]] = arith.addf %[[V]], %[[EPS]] : f32
// CHECK-NEXT: %[[INV:.*]] = math.rsqrt %[[VE]] : f32
// CHECK-NEXT: linalg.yield %[[INV]] : f32
// CHECK: %[[INVK:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 1]
// CHECK: %[[Y:.*]] = linalg.generic {indexing_maps = [#[[$ID3]], #[[$KEPT]], #[[$LAST]], #[[$LAST]], #[[$ID3]]]
// CHECK-SAME: ins(%[[CEN]], %[[INVK]], %[[G]], %[[B]] :
// CHECK-NEXT: ^bb0(%[[C:.*]]: f32, %[[I:.*]]: f32, %[[GV:.*]]: f32, %[[BV:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[N:.*]] = arith.mulf %[[C]], %[[I]] : f32
// CHECK-NEXT: %[[NG:.*]] = arith.mulf %[[N]], %[[GV]] : f32
// CHECK-NEXT: %[[NB:.*]] = arith.addf %[[NG]], %[[BV]] : f32
// CHECK-NEXT: linalg.yield %[[NB]] : f32
// CHECK: return %[[Y]]
func.func @layer_norm(%x: tensor<2x4x8xf32>, %g: tensor<8xf32>,
                      %b: tensor<8xf32>) -> tensor<2x4x8xf32> {
  %0 = loom.layer_norm %x, %g, %b, eps = 1.0e-05
      : tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>
  return %0 : tensor<2x4x8xf32>
}

// -----

// Tests that reshape collapses to 1-D and expands to the target shape.
// CHECK-LABEL: func.func @reshape
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x64xf32>)
// CHECK-NEXT: %[[F:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1, 2]] : tensor<2x16x64xf32> into tensor<2048xf32>
// CHECK-NEXT: %[[R:.*]] = tensor.expand_shape %[[F]] {{\[\[}}0, 1]] output_shape [32, 64] : tensor<2048xf32> into tensor<32x64xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape(%x: tensor<2x16x64xf32>) -> tensor<32x64xf32> {
  %0 = loom.reshape %x, shape = [-1, 64] : tensor<2x16x64xf32>
  return %0 : tensor<32x64xf32>
}

// -----

// Tests that split_heads reshapes [B, T, H*Dh] to [B, T, H, Dh] and swaps T
// and H with a [0, 2, 1, 3] transpose.
// CHECK-LABEL: func.func @split_heads
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x64xf32>)
// CHECK: %[[F:.*]] = tensor.collapse_shape %[[X]] {{\[\[}}0, 1, 2]] : tensor<2x16x64xf32> into tensor<2048xf32>
// CHECK: %[[G:.*]] = tensor.expand_shape %[[F]] {{\[\[}}0, 1, 2, 3]] output_shape [2, 16, 4, 16] : tensor<2048xf32> into tensor<2x16x4x16xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x4x16x16xf32>
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[G]] : tensor<2x16x4x16xf32>) outs(%[[E]] : tensor<2x4x16x16xf32>) permutation = [0, 2, 1, 3]
// CHECK: return %[[T]]
func.func @split_heads(%x: tensor<2x16x64xf32>) -> tensor<2x4x16x16xf32> {
  %h = loom.split_heads %x, heads = 4 : tensor<2x16x64xf32>
  return %h : tensor<2x4x16x16xf32>
}

// -----

// Tests that concat inserts each input at the running offset along the axis.
// CHECK-LABEL: func.func @concat
// CHECK-SAME: (%[[A:.*]]: tensor<2x3x4xf32>, %[[B:.*]]: tensor<2x5x4xf32>, %[[C:.*]]: tensor<2x1x4xf32>)
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x9x4xf32>
// CHECK: %[[R0:.*]] = tensor.insert_slice %[[A]] into %[[E]][0, 0, 0] [2, 3, 4] [1, 1, 1]
// CHECK: %[[R1:.*]] = tensor.insert_slice %[[B]] into %[[R0]][0, 3, 0] [2, 5, 4] [1, 1, 1]
// CHECK: %[[R2:.*]] = tensor.insert_slice %[[C]] into %[[R1]][0, 8, 0] [2, 1, 4] [1, 1, 1]
// CHECK: return %[[R2]]
func.func @concat(%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>,
                  %c: tensor<2x1x4xf32>) -> tensor<2x9x4xf32> {
  %0 = loom.concat %a, %b, %c, axis = 1
      : tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x1x4xf32>
  return %0 : tensor<2x9x4xf32>
}

// -----

// Tests that slice becomes an extract_slice along the axis, with a negative
// start counted from the end.
// CHECK-LABEL: func.func @slice
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x64xf32>)
// CHECK: %[[S0:.*]] = tensor.extract_slice %[[X]][0, 1, 0] [2, 14, 64] [1, 1, 1] : tensor<2x16x64xf32> to tensor<2x14x64xf32>
// CHECK: %[[S1:.*]] = tensor.extract_slice %[[X]][0, 0, 56] [2, 16, 8] [1, 1, 1] : tensor<2x16x64xf32> to tensor<2x16x8xf32>
// CHECK: return %[[S0]], %[[S1]]
func.func @slice(%x: tensor<2x16x64xf32>)
    -> (tensor<2x14x64xf32>, tensor<2x16x8xf32>) {
  %0 = loom.slice %x, axis = 1, start = 1, end = -1 : tensor<2x16x64xf32>
  %1 = loom.slice %x, axis = 2, start = -8, end = 64 : tensor<2x16x64xf32>
  return %0, %1 : tensor<2x14x64xf32>, tensor<2x16x8xf32>
}

// -----

// Tests that embedding gathers rows with tensor.extract, the id clamped into
// [0, rows - 1] and the column taken from the innermost loop index.
// CHECK-DAG: #[[$IDS:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[TABLE:.*]]: tensor<256x64xf32>, %[[IDS:.*]]: tensor<2x16xi32>)
// CHECK-DAG: %[[TOP:.*]] = arith.constant 255 : index
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK: linalg.generic {indexing_maps = [#[[$IDS]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[IDS]] : tensor<2x16xi32>) outs(%{{.*}} : tensor<2x16x64xf32>)
// CHECK-NEXT: ^bb0(%[[I:.*]]: i32, %{{.*}}: f32):
// CHECK-NEXT: %[[IX:.*]] = arith.index_cast %[[I]] : i32 to index
// CHECK-NEXT: %[[LO:.*]] = arith.maxsi %[[IX]], %[[ZERO]] : index
// CHECK-NEXT: %[[ROW:.*]] = arith.minsi %[[LO]], %[[TOP]] : index
// CHECK-NEXT: %[[COL:.*]] = linalg.index 2 : index
// CHECK-NEXT: %[[V:.*]] = tensor.extract %[[TABLE]][%[[ROW]], %[[COL]]] : tensor<256x64xf32>
// CHECK-NEXT: linalg.yield %[[V]] : f32
func.func @embedding(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>)
    -> tensor<2x16x64xf32> {
  %e = loom.embedding %table, %ids : tensor<256x64xf32>, tensor<2x16xi32>
  return %e : tensor<2x16x64xf32>
}

// -----

// Tests attention: q @ k^T as a batch_matmul over the flattened [B*H] batch,
// the scale and the causal mask (key j visible when j <= i + Tk - Tq, here
// + 2) and key mask selecting -inf, a softmax whose max falls back to 0 for a
// row with no visible key and whose sum falls back to 1, and p @ v.
// CHECK-DAG: #[[$ID4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$MASK:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d3)>
// CHECK-DAG: #[[$ROWS:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[$KEPT:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x10x16xf32>, %[[V:.*]]: tensor<2x4x10x32xf32>, %[[M:.*]]: tensor<2x10xi1>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[SHIFT:.*]] = arith.constant 2 : index
// CHECK-DAG: %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[Q3:.*]] = tensor.expand_shape %{{.*}} output_shape [8, 8, 16]
// CHECK: %[[K3:.*]] = tensor.expand_shape %{{.*}} output_shape [8, 10, 16]
// CHECK: %[[V3:.*]] = tensor.expand_shape %{{.*}} output_shape [8, 10, 32]
// CHECK: %[[KT:.*]] = linalg.transpose ins(%[[K3]] : tensor<8x10x16xf32>) outs(%{{.*}} : tensor<8x16x10xf32>) permutation = [0, 2, 1]
// CHECK: %[[S:.*]] = linalg.batch_matmul ins(%[[Q3]], %[[KT]] : tensor<8x8x16xf32>, tensor<8x16x10xf32>)
// CHECK: %[[S4:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 8, 10]
// CHECK: %[[MASKED:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$MASK]], #[[$ID4]]]
// CHECK-SAME: ins(%[[S4]], %[[M]] : tensor<2x4x8x10xf32>, tensor<2x10xi1>)
// CHECK-NEXT: ^bb0(%[[SV:.*]]: f32, %[[MV:.*]]: i1, %{{.*}}: f32):
// CHECK-NEXT: %[[X:.*]] = arith.mulf %[[SV]], %[[SCALE]] : f32
// CHECK-NEXT: %[[I:.*]] = linalg.index 2 : index
// CHECK-NEXT: %[[J:.*]] = linalg.index 3 : index
// CHECK-NEXT: %[[LIM:.*]] = arith.addi %[[I]], %[[SHIFT]] : index
// CHECK-NEXT: %[[VIS:.*]] = arith.cmpi sle, %[[J]], %[[LIM]] : index
// CHECK-NEXT: %[[C:.*]] = arith.select %[[VIS]], %[[X]], %[[NINF]] : f32
// CHECK-NEXT: %[[KM:.*]] = arith.select %[[MV]], %[[C]], %[[NINF]] : f32
// CHECK-NEXT: linalg.yield %[[KM]] : f32
// CHECK: %[[MAX:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$ROWS]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[MASKED]] :
// CHECK: arith.maximumf
// CHECK: %[[MAXK:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 8, 1]
// CHECK: %[[E:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$KEPT]], #[[$ID4]]]
// CHECK-SAME: ins(%[[MASKED]], %[[MAXK]] :
// CHECK-NEXT: ^bb0(%[[SV:.*]]: f32, %[[MX:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[EMPTY:.*]] = arith.cmpf oeq, %[[MX]], %[[NINF]] : f32
// CHECK-NEXT: %[[SAFE:.*]] = arith.select %[[EMPTY]], %[[ZERO]], %[[MX]] : f32
// CHECK-NEXT: %[[D:.*]] = arith.subf %[[SV]], %[[SAFE]] : f32
// CHECK-NEXT: %[[EV:.*]] = math.exp %[[D]] : f32
// CHECK-NEXT: linalg.yield %[[EV]] : f32
// CHECK: %[[SUMK:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 8, 1]
// CHECK: %[[P:.*]] = linalg.generic {indexing_maps = [#[[$ID4]], #[[$KEPT]], #[[$ID4]]]
// CHECK-SAME: ins(%[[E]], %[[SUMK]] :
// CHECK-NEXT: ^bb0(%[[EV:.*]]: f32, %[[SUM:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[ISZ:.*]] = arith.cmpf oeq, %[[SUM]], %[[ZERO]] : f32
// CHECK-NEXT: %[[DEN:.*]] = arith.select %[[ISZ]], %[[ONE]], %[[SUM]] : f32
// CHECK-NEXT: %[[PV:.*]] = arith.divf %[[EV]], %[[DEN]] : f32
// CHECK-NEXT: linalg.yield %[[PV]] : f32
// CHECK: %[[P3:.*]] = tensor.expand_shape %{{.*}} output_shape [8, 8, 10]
// CHECK: %[[O:.*]] = linalg.batch_matmul ins(%[[P3]], %[[V3]] : tensor<8x8x10xf32>, tensor<8x10x32xf32>)
// CHECK: %[[R:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 4, 8, 32]
// CHECK: return %[[R]]
func.func @attention(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x10x16xf32>,
                     %v: tensor<2x4x10x32xf32>, %m: tensor<2x10xi1>)
    -> tensor<2x4x8x32xf32> {
  %0 = loom.attention %q, %k, %v, mask %m, causal = true, scale = 0.25
      : tensor<2x4x8x16xf32>, tensor<2x4x10x16xf32>, tensor<2x4x10x32xf32>,
        tensor<2x10xi1>
  return %0 : tensor<2x4x8x32xf32>
}

// -----

// Tests cross_entropy: per row, log(sum exp(x - max)) + max - x[target]
// (the target clamped into [0, V - 1]), zeroed and not counted when the
// target is ignore_index; the result is the sum of losses over the count.
// CHECK-LABEL: func.func @cross_entropy
// CHECK-SAME: (%[[L:.*]]: tensor<2x3x16xf32>, %[[T:.*]]: tensor<2x3xi32>) -> tensor<f32>
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[TOP:.*]] = arith.constant 15 : index
// CHECK-DAG: %[[IZERO:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[IGNORE:.*]] = arith.constant -100 : i32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[L2:.*]] = tensor.expand_shape %{{.*}} output_shape [6, 16] : tensor<96xf32> into tensor<6x16xf32>
// CHECK: %[[T1:.*]] = tensor.collapse_shape %[[T]] {{\[\[}}0, 1]] : tensor<2x3xi32> into tensor<6xi32>
// CHECK: %[[MAX:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[L2]] : tensor<6x16xf32>)
// CHECK: arith.maximumf
// CHECK: %[[SE:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[L2]], %[[MAX]] : tensor<6x16xf32>, tensor<6xf32>)
// CHECK-NEXT: ^bb0(%[[X:.*]]: f32, %[[MX:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK-NEXT: %[[D:.*]] = arith.subf %[[X]], %[[MX]] : f32
// CHECK-NEXT: %[[EV:.*]] = math.exp %[[D]] : f32
// CHECK-NEXT: %[[N:.*]] = arith.addf %[[ACC]], %[[EV]] : f32
// CHECK-NEXT: linalg.yield %[[N]] : f32
// CHECK: %[[LSE:.*]] = linalg.generic {{.*}} ins(%[[MAX]], %[[SE]] : tensor<6xf32>, tensor<6xf32>)
// CHECK-NEXT: ^bb0(%[[MX:.*]]: f32, %[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[LOG:.*]] = math.log %[[S]] : f32
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[LOG]], %[[MX]] : f32
// CHECK-NEXT: linalg.yield %[[SUM]] : f32
// CHECK: %[[ROWS:.*]]:2 = linalg.generic {{.*}} ins(%[[LSE]], %[[T1]] : tensor<6xf32>, tensor<6xi32>)
// CHECK-NEXT: ^bb0(%[[LV:.*]]: f32, %[[TV:.*]]: i32, %{{.*}}: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[KEPT:.*]] = arith.cmpi ne, %[[TV]], %[[IGNORE]] : i32
// CHECK-NEXT: %[[TI:.*]] = arith.index_cast %[[TV]] : i32 to index
// CHECK-NEXT: %[[TLO:.*]] = arith.maxsi %[[TI]], %[[IZERO]] : index
// CHECK-NEXT: %[[COL:.*]] = arith.minsi %[[TLO]], %[[TOP]] : index
// CHECK-NEXT: %[[ROW:.*]] = linalg.index 0 : index
// CHECK-NEXT: %[[PICK:.*]] = tensor.extract %[[L2]][%[[ROW]], %[[COL]]] : tensor<6x16xf32>
// CHECK-NEXT: %[[LOSS:.*]] = arith.subf %[[LV]], %[[PICK]] : f32
// CHECK-NEXT: %[[KV:.*]] = arith.select %[[KEPT]], %[[LOSS]], %[[ZERO]] : f32
// CHECK-NEXT: %[[CV:.*]] = arith.select %[[KEPT]], %[[ONE]], %[[ZERO]] : f32
// CHECK-NEXT: linalg.yield %[[KV]], %[[CV]] : f32, f32
// CHECK: %[[TOTAL:.*]] = linalg.generic {{.*}} ins(%[[ROWS]]#0 : tensor<6xf32>) outs(%{{.*}} : tensor<f32>)
// CHECK: %[[COUNT:.*]] = linalg.generic {{.*}} ins(%[[ROWS]]#1 : tensor<6xf32>) outs(%{{.*}} : tensor<f32>)
// CHECK: %[[MEAN:.*]] = linalg.generic {{.*}} ins(%[[TOTAL]], %[[COUNT]] : tensor<f32>, tensor<f32>)
// CHECK: arith.divf
// CHECK: return %[[MEAN]] : tensor<f32>
func.func @cross_entropy(%logits: tensor<2x3x16xf32>, %t: tensor<2x3xi32>)
    -> tensor<f32> {
  %0 = loom.cross_entropy %logits, %t, ignore_index = -100
      : tensor<2x3x16xf32>, tensor<2x3xi32>
  return %0 : tensor<f32>
}

// -----

// Tests dropout: the splitmix64 hash of seed + site * 0x9E3779B97F4A7C15 +
// i * 0xD1B54A32D192ED03 over the row-major linear index i, its top 24 bits
// scaled by 2^-24 and compared in f64 with the rate, and the kept element
// scaled by 1 / (1 - rate). The i64 constants print as signed.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$SCALAR:.*]] = affine_map<(d0, d1) -> ()>
// CHECK-LABEL: func.func @dropout
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32>, %[[SEED:.*]]: tensor<i64>)
// CHECK-DAG: %[[FZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 1.33333337 : f32
// CHECK-DAG: %[[RATE:.*]] = arith.constant 2.500000e-01 : f64
// CHECK-DAG: %[[ULP:.*]] = arith.constant 5.9604644775390625E-8 : f64
// CHECK-DAG: %[[C40:.*]] = arith.constant 40 : i64
// CHECK-DAG: %[[C31:.*]] = arith.constant 31 : i64
// CHECK-DAG: %[[M2:.*]] = arith.constant -7723592293110705685 : i64
// CHECK-DAG: %[[C27:.*]] = arith.constant 27 : i64
// CHECK-DAG: %[[M1:.*]] = arith.constant -4658895280553007687 : i64
// CHECK-DAG: %[[C30:.*]] = arith.constant 30 : i64
// CHECK-DAG: %[[STEP:.*]] = arith.constant -3335678366873096957 : i64
// CHECK-DAG: %[[SITE:.*]] = arith.constant -2691343689449507777 : i64
// CHECK-DAG: %[[C8:.*]] = arith.constant 8 : index
// CHECK: linalg.generic {indexing_maps = [#[[$ID]], #[[$SCALAR]], #[[$ID]]]
// CHECK-SAME: ins(%[[X]], %[[SEED]] : tensor<4x8xf32>, tensor<i64>)
// CHECK-NEXT: ^bb0(%[[V:.*]]: f32, %[[S:.*]]: i64, %{{.*}}: f32):
// CHECK-NEXT: %[[I0:.*]] = linalg.index 0 : index
// CHECK-NEXT: %[[R:.*]] = arith.muli %[[I0]], %[[C8]] : index
// CHECK-NEXT: %[[I1:.*]] = linalg.index 1 : index
// CHECK-NEXT: %[[LIN:.*]] = arith.addi %[[R]], %[[I1]] : index
// CHECK-NEXT: %[[LIN64:.*]] = arith.index_cast %[[LIN]] : index to i64
// CHECK-NEXT: %[[A:.*]] = arith.muli %[[LIN64]], %[[STEP]] : i64
// CHECK-NEXT: %[[B:.*]] = arith.addi %[[A]], %[[SITE]] : i64
// CHECK-NEXT: %[[H0:.*]] = arith.addi %[[S]], %[[B]] : i64
// CHECK-NEXT: %[[SH0:.*]] = arith.shrui %[[H0]], %[[C30]] : i64
// CHECK-NEXT: %[[X0:.*]] = arith.xori %[[H0]], %[[SH0]] : i64
// CHECK-NEXT: %[[H1:.*]] = arith.muli %[[X0]], %[[M1]] : i64
// CHECK-NEXT: %[[SH1:.*]] = arith.shrui %[[H1]], %[[C27]] : i64
// CHECK-NEXT: %[[X1:.*]] = arith.xori %[[H1]], %[[SH1]] : i64
// CHECK-NEXT: %[[H2:.*]] = arith.muli %[[X1]], %[[M2]] : i64
// CHECK-NEXT: %[[SH2:.*]] = arith.shrui %[[H2]], %[[C31]] : i64
// CHECK-NEXT: %[[X2:.*]] = arith.xori %[[H2]], %[[SH2]] : i64
// CHECK-NEXT: %[[BITS:.*]] = arith.shrui %[[X2]], %[[C40]] : i64
// CHECK-NEXT: %[[BF:.*]] = arith.uitofp %[[BITS]] : i64 to f64
// CHECK-NEXT: %[[U:.*]] = arith.mulf %[[BF]], %[[ULP]] : f64
// CHECK-NEXT: %[[KEEP:.*]] = arith.cmpf oge, %[[U]], %[[RATE]] : f64
// CHECK-NEXT: %[[SV:.*]] = arith.mulf %[[V]], %[[SCALE]] : f32
// CHECK-NEXT: %[[Y:.*]] = arith.select %[[KEEP]], %[[SV]], %[[FZERO]] : f32
// CHECK-NEXT: linalg.yield %[[Y]] : f32
func.func @dropout(%x: tensor<4x8xf32>, %seed: tensor<i64>) -> tensor<4x8xf32> {
  %0 = loom.dropout %x, %seed, rate = 0.25, site = 3 : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// Tests lstm: the input projection of every step is one matmul before the
// loop; the loop over T carries (h, c, outputs), slices each gate's columns
// out of the projections and the bias, and writes the cell's new h and c
// over the carried ones; outputs[:, t] = h. The results are (outputs, h, c).
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[$COLS:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @lstm
// CHECK-SAME: (%[[X:.*]]: tensor<2x5x8xf32>, %[[H0:.*]]: tensor<2x4xf32>, %[[C0:.*]]: tensor<2x4xf32>, %[[WIH:.*]]: tensor<8x16xf32>, %[[WHH:.*]]: tensor<4x16xf32>, %[[BIAS:.*]]: tensor<16xf32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : index
// CHECK-DAG: %[[STEPS:.*]] = arith.constant 5 : index
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK: %[[X2:.*]] = tensor.expand_shape %{{.*}} output_shape [10, 8]
// CHECK: %[[XW:.*]] = linalg.matmul ins(%[[X2]], %[[WIH]] : tensor<10x8xf32>, tensor<8x16xf32>)
// CHECK: %[[XW3:.*]] = tensor.expand_shape %{{.*}} output_shape [2, 5, 16]
// CHECK: %[[OUTS:.*]] = tensor.empty() : tensor<2x5x4xf32>
// CHECK: %[[LOOP:.*]]:3 = scf.for %[[T:.*]] = %[[ZERO]] to %[[STEPS]] step %[[ONE]] iter_args(%[[H:.*]] = %[[H0]], %[[C:.*]] = %[[C0]], %[[O:.*]] = %[[OUTS]]) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x5x4xf32>)
// CHECK: %[[XT:.*]] = tensor.extract_slice %[[XW3]][0, %[[T]], 0] [2, 1, 16] [1, 1, 1] : tensor<2x5x16xf32> to tensor<2x16xf32>
// CHECK: %[[HW:.*]] = linalg.matmul ins(%[[H]], %[[WHH]] : tensor<2x4xf32>, tensor<4x16xf32>)
// CHECK: %[[BI:.*]] = tensor.extract_slice %[[BIAS]][0] [4] [1]
// CHECK: %[[XI:.*]] = tensor.extract_slice %[[XT]][0, 0] [2, 4] [1, 1]
// CHECK: %[[HI:.*]] = tensor.extract_slice %[[HW]][0, 0] [2, 4] [1, 1]
// CHECK: %[[BF:.*]] = tensor.extract_slice %[[BIAS]][4] [4] [1]
// CHECK: %[[XF:.*]] = tensor.extract_slice %[[XT]][0, 4] [2, 4] [1, 1]
// CHECK: %[[HF:.*]] = tensor.extract_slice %[[HW]][0, 4] [2, 4] [1, 1]
// CHECK: %[[BG:.*]] = tensor.extract_slice %[[BIAS]][8] [4] [1]
// CHECK: %[[XG:.*]] = tensor.extract_slice %[[XT]][0, 8] [2, 4] [1, 1]
// CHECK: %[[HG:.*]] = tensor.extract_slice %[[HW]][0, 8] [2, 4] [1, 1]
// CHECK: %[[BO:.*]] = tensor.extract_slice %[[BIAS]][12] [4] [1]
// CHECK: %[[XO:.*]] = tensor.extract_slice %[[XT]][0, 12] [2, 4] [1, 1]
// CHECK: %[[HO:.*]] = tensor.extract_slice %[[HW]][0, 12] [2, 4] [1, 1]
// CHECK: %[[CELL:.*]]:2 = linalg.generic {indexing_maps = [#[[$ID]], #[[$ID]], #[[$ID]], #[[$COLS]], #[[$ID]], #[[$ID]], #[[$COLS]], #[[$ID]], #[[$ID]], #[[$COLS]], #[[$ID]], #[[$ID]], #[[$COLS]], #[[$ID]], #[[$ID]]], iterator_types = ["parallel", "parallel"]}
// CHECK-SAME: ins(%[[C]], %[[XI]], %[[HI]], %[[BI]], %[[XF]], %[[HF]], %[[BF]], %[[XG]], %[[HG]], %[[BG]], %[[XO]], %[[HO]], %[[BO]] :
// CHECK-SAME: outs(%[[H]], %[[C]] : tensor<2x4xf32>, tensor<2x4xf32>)
// CHECK: %[[IG:.*]] = arith.divf
// CHECK: %[[FG:.*]] = arith.divf
// CHECK: %[[GG:.*]] = math.tanh
// CHECK: %[[OG:.*]] = arith.divf
// CHECK-NEXT: %[[FC:.*]] = arith.mulf %[[FG]], %{{.*}} : f32
// CHECK-NEXT: %[[IGG:.*]] = arith.mulf %[[IG]], %[[GG]] : f32
// CHECK-NEXT: %[[NC:.*]] = arith.addf %[[FC]], %[[IGG]] : f32
// CHECK-NEXT: %[[TC:.*]] = math.tanh %[[NC]] : f32
// CHECK-NEXT: %[[NH:.*]] = arith.mulf %[[OG]], %[[TC]] : f32
// CHECK-NEXT: linalg.yield %[[NH]], %[[NC]] : f32, f32
// CHECK: %[[UPD:.*]] = tensor.insert_slice %[[CELL]]#0 into %[[O]][0, %[[T]], 0] [2, 1, 4] [1, 1, 1] : tensor<2x4xf32> into tensor<2x5x4xf32>
// CHECK: scf.yield %[[CELL]]#0, %[[CELL]]#1, %[[UPD]] : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x5x4xf32>
// CHECK: return %[[LOOP]]#2, %[[LOOP]]#0, %[[LOOP]]#1 : tensor<2x5x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
func.func @lstm(%x: tensor<2x5x8xf32>, %h0: tensor<2x4xf32>,
                %c0: tensor<2x4xf32>, %wih: tensor<8x16xf32>,
                %whh: tensor<4x16xf32>, %bias: tensor<16xf32>)
    -> (tensor<2x5x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %out, %h, %c = loom.lstm %x, %h0, %c0, %wih, %whh, %bias
      : tensor<2x5x8xf32>, tensor<2x4xf32>, tensor<2x4xf32>,
        tensor<8x16xf32>, tensor<4x16xf32>, tensor<16xf32>
  return %out, %h, %c : tensor<2x5x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// Tests that arange is a generic without inputs yielding its loop index.
// CHECK-DAG: #[[$ID:.*]] = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @arange
// CHECK: %[[E:.*]] = tensor.empty() : tensor<16xi32>
// CHECK: %[[R:.*]] = linalg.generic {indexing_maps = [#[[$ID]]], iterator_types = ["parallel"]} outs(%[[E]] : tensor<16xi32>)
// CHECK-NEXT: ^bb0(%{{.*}}: i32):
// CHECK-NEXT: %[[I:.*]] = linalg.index 0 : index
// CHECK-NEXT: %[[V:.*]] = arith.index_cast %[[I]] : index to i32
// CHECK-NEXT: linalg.yield %[[V]] : i32
// CHECK: return %[[R]]
func.func @arange() -> tensor<16xi32> {
  %pos = loom.arange size = 16 : tensor<16xi32>
  return %pos : tensor<16xi32>
}

// -----

// Tests that fill becomes linalg.fill of a constant of the element type.
// CHECK-LABEL: func.func @fill
// CHECK-DAG: %[[I:.*]] = arith.constant 7 : i32
// CHECK-DAG: %[[F:.*]] = arith.constant 1.500000e+00 : f32
// CHECK: %[[E0:.*]] = tensor.empty() : tensor<2x3xf32>
// CHECK: %[[A:.*]] = linalg.fill ins(%[[F]] : f32) outs(%[[E0]] : tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: %[[E1:.*]] = tensor.empty() : tensor<4xi32>
// CHECK: %[[B:.*]] = linalg.fill ins(%[[I]] : i32) outs(%[[E1]] : tensor<4xi32>) -> tensor<4xi32>
// CHECK: return %[[A]], %[[B]]
func.func @fill() -> (tensor<2x3xf32>, tensor<4xi32>) {
  %a = loom.fill value = 1.5 : tensor<2x3xf32>
  %b = loom.fill value = 7.0 : tensor<4xi32>
  return %a, %b : tensor<2x3xf32>, tensor<4xi32>
}

// -----

// Tests that an op with a dynamic shape is refused, naming its type.
func.func @dynamic(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{cannot lower an op with the dynamic type 'tensor<?x4xf32>'; bind the symbolic dims first (loom-specialize)}}
  %0 = loom.exp %x : tensor<?x4xf32>
  return %0 : tensor<?x4xf32>
}
