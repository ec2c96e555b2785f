// RUN: loom-opt %s -split-input-file -loom-cpu-attention-to-call | FileCheck %s --enable-var-scope
// RUN: loom-opt %s -split-input-file -loom-cpu-attention-to-call="block-q=32 block-k=128" | FileCheck %s --check-prefix=BLOCKS

// Tests that an attention and an attention_lse of the same operands (a
// training step's forward) become one parallel loop over the 8 heads with
// one forward kernel call writing both results, and that no [Tq x Tk]
// tensor or buffer appears.
// The block shape is the last two arguments: 0 x 0 (the kernels' default)
// unless block-q / block-k are given.
// CHECK-LABEL: func.func private @loom_attention_forward(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, f64, i64, i64)
// BLOCKS-LABEL: func.func @forward_with_lse
// BLOCKS: %[[BQ:.*]] = arith.constant 32 : i64
// BLOCKS: %[[BK:.*]] = arith.constant 128 : i64
// BLOCKS: func.call @loom_attention_forward({{.*}}, %[[BQ]], %[[BK]])
// BLOCKS-LABEL: func.func @backward
// BLOCKS: func.call @loom_attention_backward({{.*}}, %{{.*}}, %{{.*}})
// CHECK-LABEL: func.func @forward_with_lse
// CHECK-NOT: 16x16
// CHECK-COUNT-1: scf.parallel (%[[H:.*]]) = (%{{.*}}) to (%{{.*}}) step (%{{.*}})
// CHECK: func.call @loom_attention_forward({{.*}}, %cst{{[_0-9]*}}, %c0_i64{{[_0-9]*}}, %c0_i64{{[_0-9]*}})
// CHECK-NOT: func.call @loom_attention_forward
// CHECK: bufferization.to_tensor %{{.*}} restrict writable : memref<8x16x8xf32> to tensor<8x16x8xf32>
// CHECK: bufferization.to_tensor %{{.*}} restrict writable : memref<8x16xf32> to tensor<8x16xf32>
// CHECK-NOT: loom.attention
func.func @forward_with_lse(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>) -> (tensor<2x4x16x8xf32>, tensor<2x4x16xf32>) {
  %o = loom.attention %q, %k, %v, causal = true, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>
  %lse = loom.attention_lse %q, %k, causal = true, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32> -> tensor<2x4x16xf32>
  return %o, %lse : tensor<2x4x16x8xf32>, tensor<2x4x16xf32>
}

// -----

// Tests that attention_grad becomes one backward kernel call per head, with
// the key mask row of the head's batch entry (head / 3), and that f64
// attention is left for the linalg lowering.
// CHECK-LABEL: func.func private @loom_attention_backward
// CHECK-LABEL: func.func @backward
// CHECK: scf.parallel (%[[H:.*]]) =
// CHECK: %[[ROW:.*]] = arith.divui %[[H]], %{{.*}} : index
// CHECK: func.call @loom_attention_backward
// CHECK: loom.attention %{{.*}} : tensor<2x3x5x4xf64>
func.func @backward(%q: tensor<2x3x5x4xf32>, %k: tensor<2x3x7x4xf32>, %v: tensor<2x3x7x6xf32>,
                    %o: tensor<2x3x5x6xf32>, %lse: tensor<2x3x5xf32>, %do: tensor<2x3x5x6xf32>,
                    %m: tensor<2x7xi1>, %q64: tensor<2x3x5x4xf64>)
    -> (tensor<2x3x5x4xf32>, tensor<2x3x7x4xf32>, tensor<2x3x7x6xf32>, tensor<2x3x5x4xf64>) {
  %dq, %dk, %dv = loom.attention_grad %q, %k, %v, %o, %lse, %do, mask %m, causal = false, scale = 0.5
      : tensor<2x3x5x4xf32>, tensor<2x3x7x4xf32>, tensor<2x3x7x6xf32>, tensor<2x3x5x6xf32>,
        tensor<2x3x5xf32>, tensor<2x7xi1>
  %o64 = loom.attention %q64, %q64, %q64, causal = true, scale = 0.5
      : tensor<2x3x5x4xf64>, tensor<2x3x5x4xf64>, tensor<2x3x5x4xf64>
  return %dq, %dk, %dv, %o64 : tensor<2x3x5x4xf32>, tensor<2x3x7x4xf32>, tensor<2x3x7x6xf32>, tensor<2x3x5x4xf64>
}

// -----

// Tests that a head split operand is read from the [B, T, H*Dh] tensor in
// place (head h: batch entry h / 4 at column (h % 4) * 8, row stride and
// column stride from its buffer) and that an output whose only reader is a
// merge_heads is written straight into a [B, T, H*Dh] buffer that replaces
// the merge: no [B, H, T, Dh] tensor or copy is left; the gradient's dq is
// merged the same way, while dk (read as it is) keeps the head-major form.
// CHECK-LABEL: func.func @head_views
// CHECK-SAME: (%[[X:.*]]: tensor<2x16x32xf32>, %[[G:.*]]: tensor<2x16x32xf32>
// CHECK-NOT: loom.split_heads
// CHECK: %[[XB:.*]] = bufferization.to_buffer %[[X]] read_only : tensor<2x16x32xf32> to memref<2x16x32xf32, strided<[?, ?, ?], offset: ?>>
// CHECK: %[[OB:.*]] = memref.alloc() : memref<2x16x32xf32>
// CHECK: scf.parallel (%[[H:.*]]) =
// CHECK: %[[H64:.*]] = arith.index_cast %[[H]] : index to i64
// CHECK: %[[ENTRY:.*]] = arith.divui %[[H64]], %c4_i64{{.*}} : i64
// CHECK: %[[HEAD:.*]] = arith.remui %[[H64]], %c4_i64{{.*}} : i64
// CHECK: arith.muli %[[HEAD]], %c8_i64{{.*}} : i64
// CHECK: func.call @loom_attention_forward
// CHECK: %[[O:.*]] = bufferization.to_tensor %[[OB]] restrict writable : memref<2x16x32xf32> to tensor<2x16x32xf32>
// CHECK: memref.alloc() : memref<2x16x32xf32>
// CHECK: memref.alloc() : memref<8x16x8xf32>
// CHECK: memref.alloc() : memref<8x16x8xf32>
// CHECK: func.call @loom_attention_backward
// CHECK-NOT: loom.
// CHECK: return %[[O]], %{{.*}}, %{{.*}} : tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x4x16x8xf32>
func.func @head_views(%x: tensor<2x16x32xf32>, %g: tensor<2x16x32xf32>,
                      %o0: tensor<2x4x16x8xf32>, %lse: tensor<2x4x16xf32>)
    -> (tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x4x16x8xf32>) {
  %q = loom.split_heads %x, heads = 4 : tensor<2x16x32xf32>
  %o = loom.attention %q, %q, %q, causal = true, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>
  %m = loom.merge_heads %o : tensor<2x4x16x8xf32>
  %do = loom.split_heads %g, heads = 4 : tensor<2x16x32xf32>
  %dq, %dk, %dv = loom.attention_grad %q, %q, %q, %o0, %lse, %do, causal = true, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>,
        tensor<2x4x16xf32>
  %mq = loom.merge_heads %dq : tensor<2x4x16x8xf32>
  return %m, %mq, %dk : tensor<2x16x32xf32>, tensor<2x16x32xf32>, tensor<2x4x16x8xf32>
}

// -----

// Tests the views in a training step's shapes: an attention and its lse
// (one call) over q split from %x and k, v split from %y (Tk 24 != Tq 16)
// with a key mask (row h / 4), the output merged; the gradient's dk and dv
// merged too ([2, 24, 32]), dq kept head-major for its other reader.
// CHECK-LABEL: func.func @paired_cross_views
// CHECK-SAME: (%[[X:[^:]*]]: tensor<2x16x32xf32>, %[[Y:[^:]*]]: tensor<2x24x32xf32>
// CHECK: bufferization.to_buffer %[[X]] read_only : tensor<2x16x32xf32>
// CHECK: bufferization.to_buffer %[[Y]] read_only : tensor<2x24x32xf32>
// CHECK: %[[OB:.*]] = memref.alloc() : memref<2x16x32xf32>
// CHECK: %[[LB:.*]] = memref.alloc() : memref<8x16xf32>
// CHECK: scf.parallel
// CHECK: arith.divui %{{.*}}, %c4{{.*}} : index
// CHECK-COUNT-1: func.call @loom_attention_forward
// CHECK: bufferization.to_tensor %[[OB]] restrict writable : memref<2x16x32xf32> to tensor<2x16x32xf32>
// CHECK: bufferization.to_tensor %[[LB]] restrict writable : memref<8x16xf32> to tensor<8x16xf32>
// CHECK: memref.alloc() : memref<8x16x8xf32>
// CHECK: memref.alloc() : memref<2x24x32xf32>
// CHECK: memref.alloc() : memref<2x24x32xf32>
// CHECK: func.call @loom_attention_backward
// CHECK-NOT: loom.
// CHECK: return
func.func @paired_cross_views(%x: tensor<2x16x32xf32>, %y: tensor<2x24x32xf32>,
                              %mask: tensor<2x24xi1>, %g: tensor<2x16x32xf32>)
    -> (tensor<2x16x32xf32>, tensor<2x4x16xf32>, tensor<2x4x16x8xf32>,
        tensor<2x24x32xf32>, tensor<2x24x32xf32>) {
  %q = loom.split_heads %x, heads = 4 : tensor<2x16x32xf32>
  %k = loom.split_heads %y, heads = 4 : tensor<2x24x32xf32>
  %o = loom.attention %q, %k, %k, mask %mask, causal = false, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x24x8xf32>, tensor<2x4x24x8xf32>, tensor<2x24xi1>
  %lse = loom.attention_lse %q, %k, mask %mask, causal = false, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x24x8xf32>, tensor<2x24xi1> -> tensor<2x4x16xf32>
  %m = loom.merge_heads %o : tensor<2x4x16x8xf32>
  %os = loom.split_heads %m, heads = 4 : tensor<2x16x32xf32>
  %do = loom.split_heads %g, heads = 4 : tensor<2x16x32xf32>
  %dq, %dk, %dv = loom.attention_grad %q, %k, %k, %os, %lse, %do, mask %mask, causal = false, scale = 0.35
      : tensor<2x4x16x8xf32>, tensor<2x4x24x8xf32>, tensor<2x4x24x8xf32>, tensor<2x4x16x8xf32>,
        tensor<2x4x16xf32>, tensor<2x24xi1>
  %mk = loom.merge_heads %dk : tensor<2x4x24x8xf32>
  %mv = loom.merge_heads %dv : tensor<2x4x24x8xf32>
  return %m, %lse, %dq, %mk, %mv : tensor<2x16x32xf32>, tensor<2x4x16xf32>, tensor<2x4x16x8xf32>,
      tensor<2x24x32xf32>, tensor<2x24x32xf32>
}
