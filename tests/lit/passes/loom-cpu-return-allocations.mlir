// RUN: loom-opt %s -split-input-file -loom-cpu-return-allocations | FileCheck %s
// RUN: loom-opt %s -split-input-file -loom-cpu-return-allocations "-buffer-results-to-out-params=hoist-static-allocs=true modify-public-functions=true" | FileCheck %s --check-prefix=OUT

// Tests that a returned row expansion of a local buffer (a GEMM product its
// epilogue overwrote) becomes the buffer: allocated in the returned shape,
// the GEMM writing its collapse; and that buffer-results-to-out-params then
// writes into the caller's buffer with no copy.
// CHECK-LABEL: func.func @expanded
// CHECK: %[[A:.*]] = memref.alloc() {alignment = 64 : i64} : memref<2x4x16xf32>
// CHECK-NEXT: %[[C:.*]] = memref.collapse_shape %[[A]] {{\[\[}}0, 1], [2]] : memref<2x4x16xf32> into memref<8x16xf32>
// CHECK-NEXT: linalg.matmul ins(%{{.*}}, %{{.*}} : memref<8x32xf32>, memref<32x16xf32>) outs(%[[C]] : memref<8x16xf32>)
// CHECK-NEXT: return %[[A]] : memref<2x4x16xf32>
// OUT-LABEL: func.func @expanded
// OUT-SAME: %[[OUT:[a-z0-9]+]]: memref<2x4x16xf32>)
// OUT-NOT: memref.copy
// OUT: %[[C:.*]] = memref.collapse_shape %[[OUT]]
// OUT-NEXT: linalg.matmul {{.*}} outs(%[[C]] : memref<8x16xf32>)
// OUT-NOT: memref.copy
// OUT: return
func.func @expanded(%x: memref<8x32xf32>, %w: memref<32x16xf32>) -> memref<2x4x16xf32> {
  %a = memref.alloc() {alignment = 64 : i64} : memref<8x16xf32>
  linalg.matmul ins(%x, %w : memref<8x32xf32>, memref<32x16xf32>) outs(%a : memref<8x16xf32>)
  %e = memref.expand_shape %a [[0, 1], [2]] output_shape [2, 4, 16] : memref<8x16xf32> into memref<2x4x16xf32>
  return %e : memref<2x4x16xf32>
}

// -----

// Tests a collapsed view (attention's heads joined again): the buffer is
// allocated collapsed, its writer sees the expansion.
// CHECK-LABEL: func.func @collapsed
// CHECK: %[[A:.*]] = memref.alloc() : memref<2x12xf32>
// CHECK-NEXT: %[[E:.*]] = memref.expand_shape %[[A]] {{\[\[}}0], [1, 2]] output_shape [2, 3, 4] : memref<2x12xf32> into memref<2x3x4xf32>
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : memref<2x3x4xf32>)
// CHECK-NEXT: return %[[A]] : memref<2x12xf32>
func.func @collapsed(%v: f32) -> memref<2x12xf32> {
  %a = memref.alloc() : memref<2x3x4xf32>
  linalg.fill ins(%v : f32) outs(%a : memref<2x3x4xf32>)
  %c = memref.collapse_shape %a [[0], [1, 2]] : memref<2x3x4xf32> into memref<2x12xf32>
  return %c : memref<2x12xf32>
}

// -----

// Tests what stays: a buffer returned both as itself and as a view (two
// results, one buffer), a view of an argument, and a view of a buffer with
// dynamic sizes.
// CHECK-LABEL: func.func @stays
// CHECK: %[[A:.*]] = memref.alloc() : memref<8x16xf32>
// CHECK: %[[E:.*]] = memref.expand_shape %[[A]]
// CHECK: %[[X:.*]] = memref.expand_shape %arg0
// CHECK: %[[D:.*]] = memref.alloc(%arg1) : memref<?x16xf32>
// CHECK: %[[DE:.*]] = memref.expand_shape %[[D]]
// CHECK: return %[[A]], %[[E]], %[[X]], %[[DE]]
func.func @stays(%arg0: memref<8x16xf32>, %arg1: index) -> (memref<8x16xf32>, memref<2x4x16xf32>, memref<2x4x16xf32>, memref<?x2x16xf32>) {
  %a = memref.alloc() : memref<8x16xf32>
  %e = memref.expand_shape %a [[0, 1], [2]] output_shape [2, 4, 16] : memref<8x16xf32> into memref<2x4x16xf32>
  %x = memref.expand_shape %arg0 [[0, 1], [2]] output_shape [2, 4, 16] : memref<8x16xf32> into memref<2x4x16xf32>
  %d = memref.alloc(%arg1) : memref<?x16xf32>
  %c2 = arith.constant 2 : index
  %h = arith.divui %arg1, %c2 : index
  %de = memref.expand_shape %d [[0, 1], [2]] output_shape [%h, 2, 16] : memref<?x16xf32> into memref<?x2x16xf32>
  return %a, %e, %x, %de : memref<8x16xf32>, memref<2x4x16xf32>, memref<2x4x16xf32>, memref<?x2x16xf32>
}
