// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-lower-to-linalg{keep-attention=1 keep-head-views=1}))' | FileCheck %s
// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-lower-to-linalg{keep-attention=1}))' | FileCheck %s --check-prefix=COPIES

// Tests that keep-head-views leaves the head splits that only kept
// attention ops read and the merge of a kept attention's output that
// nothing else reads, for the attention kernels (no transpose copy);
// without it they become linalg.transpose copies.
// CHECK-LABEL: func.func @kept
// CHECK-NOT: linalg.transpose
// CHECK: %[[Q:.*]] = loom.split_heads %{{.*}}, heads = 2
// CHECK: %[[O:.*]] = loom.attention %[[Q]], %[[Q]], %[[Q]]
// CHECK: %[[L:.*]] = loom.attention_lse %[[Q]], %[[Q]]
// CHECK: loom.merge_heads %[[O]]
// CHECK-NOT: linalg.transpose
// COPIES-LABEL: func.func @kept
// COPIES-COUNT-2: linalg.transpose
// COPIES-NOT: loom.split_heads
// COPIES-NOT: loom.merge_heads
func.func @kept(%x: tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<2x2x8xf32>) {
  %q = loom.split_heads %x, heads = 2 : tensor<2x8x16xf32>
  %o = loom.attention %q, %q, %q, causal = true, scale = 0.5
      : tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>
  %l = loom.attention_lse %q, %q, causal = true, scale = 0.5
      : tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32> -> tensor<2x2x8xf32>
  %m = loom.merge_heads %o : tensor<2x2x8x8xf32>
  return %m, %l : tensor<2x8x16xf32>, tensor<2x2x8xf32>
}

// -----

// Tests that a split that something besides attention reads (here the
// return), and the merge of an attention output that is read elsewhere
// too, are lowered as before: the kernels need the head-major tensor then.
// CHECK-LABEL: func.func @copied
// CHECK-NOT: loom.split_heads
// CHECK: linalg.transpose
// CHECK: loom.attention
// CHECK: linalg.transpose
// CHECK-NOT: loom.merge_heads
func.func @copied(%x: tensor<2x8x16xf32>)
    -> (tensor<2x2x8x8xf32>, tensor<2x8x16xf32>, tensor<2x2x8x8xf32>) {
  %q = loom.split_heads %x, heads = 2 : tensor<2x8x16xf32>
  %o = loom.attention %q, %q, %q, causal = false, scale = 0.5
      : tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>
  %m = loom.merge_heads %o : tensor<2x2x8x8xf32>
  return %q, %m, %o : tensor<2x2x8x8xf32>, tensor<2x8x16xf32>, tensor<2x2x8x8xf32>
}

// -----

// Tests a backward: the split of the incoming gradient and the merges of
// dq and dk stay for the kernel; dv, also returned head-major, is merged by
// a copy.
// CHECK-LABEL: func.func @backward
// CHECK: %[[DO:.*]] = loom.split_heads %{{.*}}, heads = 2
// CHECK: %[[DQ:[^,]*]], %[[DK:[^,]*]], %[[DV:[^ ]*]] = loom.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[DO]]
// CHECK: loom.merge_heads %[[DQ]]
// CHECK: loom.merge_heads %[[DK]]
// CHECK: linalg.transpose ins(%[[DV]]
// CHECK-NOT: loom.merge_heads
func.func @backward(%q: tensor<2x2x8x8xf32>, %o: tensor<2x2x8x8xf32>,
                    %lse: tensor<2x2x8xf32>, %g: tensor<2x8x16xf32>)
    -> (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x2x8x8xf32>) {
  %do = loom.split_heads %g, heads = 2 : tensor<2x8x16xf32>
  %dq, %dk, %dv = loom.attention_grad %q, %q, %q, %o, %lse, %do, causal = true, scale = 0.5
      : tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>,
        tensor<2x2x8xf32>
  %mq = loom.merge_heads %dq : tensor<2x2x8x8xf32>
  %mk = loom.merge_heads %dk : tensor<2x2x8x8xf32>
  %mv = loom.merge_heads %dv : tensor<2x2x8x8xf32>
  return %mq, %mk, %mv, %dv : tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x2x8x8xf32>
}
