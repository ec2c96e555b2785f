// RUN: loom-opt %s -loom-outline-layers="head-views=1" | FileCheck %s
// RUN: loom-opt %s -loom-outline-layers | FileCheck %s --check-prefix=COPIES

// Tests that with head-views the backward of a layer recomputes the head
// splits of its forward's q (a view, as loom.transpose is) and reads the
// forward's attention output as split_heads of the merge that the forward
// hands over anyway: the forward returns no [B, H, T, Dh] tensor, so the
// attention kernels read q and write o in the [B, T, H*Dh] layout. Without
// head-views the forward returns q and o head-major (materialized copies).
// CHECK-LABEL: func.func private @g_blocks_forward
// CHECK-SAME: -> (tensor<1x2x4xf32>, tensor<1x4x8xf32>)
// CHECK: %[[Q:.*]] = loom.split_heads
// CHECK: %[[O:.*]] = loom.attention %[[Q]], %[[Q]], %[[Q]]
// CHECK: %[[M:.*]] = loom.merge_heads %[[O]]
// CHECK: return %{{.*}}, %[[M]] : tensor<1x2x4xf32>, tensor<1x4x8xf32>
// CHECK-LABEL: func.func private @g_blocks_backward
// CHECK-SAME: (%[[D:.*]]: tensor<1x4x8xf32>, %[[X:.*]]: tensor<1x4x8xf32>, %[[M2:.*]]: tensor<1x4x8xf32>, %[[L:.*]]: tensor<1x2x4xf32>)
// CHECK-DAG: %[[DO:.*]] = loom.split_heads %[[D]], heads = 2
// CHECK-DAG: %[[Q2:.*]] = loom.split_heads %[[X]], heads = 2
// CHECK-DAG: %[[O2:.*]] = loom.split_heads %[[M2]], heads = 2
// CHECK: loom.attention_grad %[[Q2]], %[[Q2]], %[[Q2]], %[[O2]], %[[L]], %[[DO]]
// CHECK-LABEL: func.func @g(
// CHECK-SAME: %[[IN:[^:]*]]: tensor<1x4x8xf32>
// CHECK: %[[F0:.*]]:2 = call @g_blocks_forward(%[[IN]])
// CHECK: %[[F1:.*]]:2 = call @g_blocks_forward(%[[F0]]#1)
// CHECK: %[[B1:.*]] = call @g_blocks_backward(%{{.*}}, %[[F0]]#1, %[[F1]]#1, %[[F1]]#0)
// CHECK: call @g_blocks_backward(%[[B1]], %[[IN]], %[[F0]]#1, %[[F0]]#0)
// COPIES-LABEL: func.func private @g_blocks_forward
// COPIES-SAME: -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32>, tensor<1x4x8xf32>)
func.func @g(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  %q0 = loom.split_heads %x, heads = 2 : tensor<1x4x8xf32> loc("blocks[0].attn"("nn.loom":1:1))
  %o0 = loom.attention %q0, %q0, %q0, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> loc("blocks[0].attn"("nn.loom":2:1))
  %l0 = loom.attention_lse %q0, %q0, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4xf32> loc("blocks[0].attn"("nn.loom":3:1))
  %y0 = loom.merge_heads %o0 : tensor<1x2x4x4xf32> loc("blocks[0].attn"("nn.loom":4:1))
  %q1 = loom.split_heads %y0, heads = 2 : tensor<1x4x8xf32> loc("blocks[1].attn"("nn.loom":1:1))
  %o1 = loom.attention %q1, %q1, %q1, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> loc("blocks[1].attn"("nn.loom":2:1))
  %l1 = loom.attention_lse %q1, %q1, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32> -> tensor<1x2x4xf32> loc("blocks[1].attn"("nn.loom":3:1))
  %y1 = loom.merge_heads %o1 : tensor<1x2x4x4xf32> loc("blocks[1].attn"("nn.loom":4:1))
  %g = loom.mul %y1, %y1 : tensor<1x4x8xf32>, tensor<1x4x8xf32> loc("head"("nn.loom":9:1))
  %do1 = loom.split_heads %g, heads = 2 : tensor<1x4x8xf32> loc("blocks[1].attn"("nn.loom":5:1))
  %dq1, %dk1, %dv1 = loom.attention_grad %q1, %q1, %q1, %o1, %l1, %do1, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32> loc("blocks[1].attn"("nn.loom":6:1))
  %e1 = loom.merge_heads %dq1 : tensor<1x2x4x4xf32> loc("blocks[1].attn"("nn.loom":7:1))
  %do0 = loom.split_heads %e1, heads = 2 : tensor<1x4x8xf32> loc("blocks[0].attn"("nn.loom":5:1))
  %dq0, %dk0, %dv0 = loom.attention_grad %q0, %q0, %q0, %o0, %l0, %do0, causal = true, scale = 0.5 : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4xf32> loc("blocks[0].attn"("nn.loom":6:1))
  %e0 = loom.merge_heads %dq0 : tensor<1x2x4x4xf32> loc("blocks[0].attn"("nn.loom":7:1))
  return %e0 : tensor<1x4x8xf32>
}
