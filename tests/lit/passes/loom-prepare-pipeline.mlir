// RUN: loom-opt %s -loom-prepare-pipeline="bind=B=3" | FileCheck %s

// Tests that the pipeline specializes, canonicalizes, CSEs and counts FLOPs.
// CHECK-LABEL: func.func @f
// CHECK-SAME: (%[[X:.*]]: tensor<3x4xf32>) -> tensor<3x4xf32>
// CHECK-SAME: loom.flops = 24 : i64
// CHECK: %[[E:.*]] = loom.exp %[[X]] : tensor<3x4xf32>
// CHECK-NOT: loom.exp
// CHECK-NOT: loom.transpose
// CHECK: %[[S:.*]] = loom.add %[[E]], %[[E]]
// CHECK: return %[[S]]
func.func @f(%x: tensor<?x4xf32> {loom.dims = ["B", ""]}) -> tensor<?x4xf32> {
  %t = loom.transpose %x, perm = [1, 0] : tensor<?x4xf32>
  %u = loom.transpose %t, perm = [1, 0] : tensor<4x?xf32>
  %a = loom.exp %u : tensor<?x4xf32>
  %b = loom.exp %x : tensor<?x4xf32>
  %s = loom.add %a, %b : tensor<?x4xf32>, tensor<?x4xf32>
  return %s : tensor<?x4xf32>
}
