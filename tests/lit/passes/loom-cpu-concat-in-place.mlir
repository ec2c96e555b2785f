// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-cpu-concat-in-place))' | FileCheck %s

// Tests that the pieces of a concatenation are computed in their slices:
// a 2-D piece written as a call's out-param (copied through a
// collapse_shape) and a 1-D piece written by a linalg op become views of
// the result's bytes at their slices' byte offsets (16 x 4 = 64, 0), with
// their old types; the result itself is a view at 0; both copies are gone;
// the constant zeros between them stay a copy.
// (Index constants print as %c<value>.)
// CHECK-LABEL: func.func @flat_gradient
// CHECK: %[[BYTES:.*]] = memref.alloc() {alignment = 64 : i64} : memref<256xi8>
// CHECK: %c0 = arith.constant 0 : index
// CHECK: %[[G:.*]] = memref.view %[[BYTES]][%c0][] : memref<256xi8> to memref<64xf32>
// CHECK: %c64 = arith.constant 64 : index
// CHECK: %[[W:.*]] = memref.view %[[BYTES]][%c64][] : memref<256xi8> to memref<4x8xf32>
// CHECK: %[[B:.*]] = memref.view %[[BYTES]][%c0][] : memref<256xi8> to memref<16xf32>
// CHECK: call @backward(%{{.*}}, %[[W]])
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[B]] : memref<16xf32>)
// CHECK-NOT: memref.collapse_shape
// CHECK: %[[Z:.*]] = memref.subview %[[G]][48] [16] [1]
// CHECK: memref.copy %{{.*}}, %[[Z]]
// CHECK-NOT: memref.copy
// CHECK: return %[[G]]
memref.global "private" constant @zeros : memref<16xf32> = dense<0.0>
func.func private @backward(memref<2x4xf32>, memref<4x8xf32>)
func.func @flat_gradient(%x: memref<2x4xf32>, %s: f32) -> memref<64xf32> {
  %w = memref.alloc() : memref<4x8xf32>
  call @backward(%x, %w) : (memref<2x4xf32>, memref<4x8xf32>) -> ()
  %b = memref.alloc() : memref<16xf32>
  linalg.fill ins(%s : f32) outs(%b : memref<16xf32>)
  %g = memref.alloc() : memref<64xf32>
  %wf = memref.collapse_shape %w [[0, 1]] : memref<4x8xf32> into memref<32xf32>
  %s0 = memref.subview %g[0] [16] [1] : memref<64xf32> to memref<16xf32, strided<[1]>>
  memref.copy %b, %s0 : memref<16xf32> to memref<16xf32, strided<[1]>>
  %s1 = memref.subview %g[16] [32] [1] : memref<64xf32> to memref<32xf32, strided<[1], offset: 16>>
  memref.copy %wf, %s1 : memref<32xf32> to memref<32xf32, strided<[1], offset: 16>>
  %z = memref.get_global @zeros : memref<16xf32>
  %s2 = memref.subview %g[48] [16] [1] : memref<64xf32> to memref<16xf32, strided<[1], offset: 48>>
  memref.copy %z, %s2 : memref<16xf32> to memref<16xf32, strided<[1], offset: 48>>
  return %g : memref<64xf32>
}

// -----

// Tests that a piece read after its copy stays a buffer of its own (and
// its copy stays), while the other piece is computed in place.
// CHECK-LABEL: func.func @piece_read_later
// CHECK: %[[BYTES:.*]] = memref.alloc() {alignment = 64 : i64} : memref<64xi8>
// CHECK: %[[A:.*]] = memref.alloc() : memref<8xf32>
// CHECK: memref.copy %[[A]], %{{.*}} : memref<8xf32> to memref<8xf32, strided<[1], offset: 8>>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%[[A]] : memref<8xf32>)
func.func @piece_read_later(%s: f32) -> memref<16xf32> {
  %p = memref.alloc() : memref<8xf32>
  linalg.fill ins(%s : f32) outs(%p : memref<8xf32>)
  %a = memref.alloc() : memref<8xf32>
  linalg.fill ins(%s : f32) outs(%a : memref<8xf32>)
  %g = memref.alloc() : memref<16xf32>
  %s0 = memref.subview %g[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  memref.copy %p, %s0 : memref<8xf32> to memref<8xf32, strided<[1]>>
  %s1 = memref.subview %g[8] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 8>>
  memref.copy %a, %s1 : memref<8xf32> to memref<8xf32, strided<[1], offset: 8>>
  linalg.fill ins(%s : f32) outs(%a : memref<8xf32>)
  return %g : memref<16xf32>
}

// -----

// Tests that nothing changes when the result is read before a piece's copy
// (computing that piece earlier would change what the read sees).
// CHECK-LABEL: func.func @result_read_early
// CHECK-NOT: memref.view
// CHECK: memref.copy
// CHECK: memref.copy
func.func @result_read_early(%s: f32, %out: memref<8xf32>) -> memref<16xf32> {
  %p = memref.alloc() : memref<8xf32>
  linalg.fill ins(%s : f32) outs(%p : memref<8xf32>)
  %g = memref.alloc() : memref<16xf32>
  %s0 = memref.subview %g[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  memref.copy %p, %s0 : memref<8xf32> to memref<8xf32, strided<[1]>>
  %s1 = memref.subview %g[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  memref.copy %s1, %out : memref<8xf32, strided<[1]>> to memref<8xf32>
  %q = memref.alloc() : memref<8xf32>
  linalg.fill ins(%s : f32) outs(%q : memref<8xf32>)
  %s2 = memref.subview %g[8] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1], offset: 8>>
  memref.copy %q, %s2 : memref<8xf32> to memref<8xf32, strided<[1], offset: 8>>
  return %g : memref<16xf32>
}
