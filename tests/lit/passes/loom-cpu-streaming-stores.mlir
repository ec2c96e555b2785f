// RUN: loom-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(loom-cpu-streaming-stores{min-bytes=4096}))' | FileCheck %s

// Tests that rows written into views of an argument of at least min-bytes
// (here 4 KB: 1024 floats) become non-temporal vector.stores, vectors with
// leading unit dims flattened first, and that each thread meets a fence at
// the end of its iteration of the parallel loop; a write into a smaller
// argument, into a local buffer, or one that may run out of bounds stays.
// CHECK-LABEL: func.func @update
// CHECK: scf.forall
// CHECK: scf.for
// CHECK: vector.store %{{.*}}, %{{.*}}[%{{.*}}] {nontemporal = true} : memref<32xf32, strided<[1], offset: ?>>, vector<32xf32>
// CHECK: %[[ROW:.*]] = vector.shape_cast %{{.*}} : vector<1x16xf32> to vector<16xf32>
// CHECK: vector.store %[[ROW]], %{{.*}}[%{{.*}}, %{{.*}}] {nontemporal = true} : memref<1x16xf32, strided<[1024, 1], offset: ?>>, vector<16xf32>
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<32xf32>, memref<64xf32>
// CHECK: vector.transfer_write %{{[^ ]*}}, %{{[^ ]*}}[%{{[^ ]*}}] : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
// CHECK: }
// CHECK-NEXT: llvm.fence seq_cst
// CHECK-NEXT: }
func.func @update(%big: memref<2048xf32>, %big2: memref<2x1024xf32>, %small: memref<256xf32>, %v: vector<32xf32>, %w: vector<1x16xf32>) {
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  %c1024 = arith.constant 1024 : index
  %local = memref.alloc() : memref<64xf32>
  scf.forall (%t) = (0) to (2048) step (1024) {
    %chunk = memref.subview %big[%t] [1024] [1] : memref<2048xf32> to memref<1024xf32, strided<[1], offset: ?>>
    scf.for %i = %c0 to %c1024 step %c32 {
      %row = memref.subview %chunk[%i] [32] [1] : memref<1024xf32, strided<[1], offset: ?>> to memref<32xf32, strided<[1], offset: ?>>
      vector.transfer_write %v, %row[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
      %r2 = memref.subview %big2[0, %i] [1, 16] [1, 1] : memref<2x1024xf32> to memref<1x16xf32, strided<[1024, 1], offset: ?>>
      vector.transfer_write %w, %r2[%c0, %c0] {in_bounds = [true, true]} : vector<1x16xf32>, memref<1x16xf32, strided<[1024, 1], offset: ?>>
      %srow = memref.subview %small[%c0] [32] [1] : memref<256xf32> to memref<32xf32, strided<[1], offset: ?>>
      vector.transfer_write %v, %srow[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
      vector.transfer_write %v, %local[%c0] {in_bounds = [true]} : vector<32xf32>, memref<64xf32>
      vector.transfer_write %v, %row[%c0] : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    }
  }
  memref.dealloc %local : memref<64xf32>
  return
}

// -----

// Tests that a serial loop's streaming stores meet a fence right after
// the loop, before a parallel loop in the same outer loop reads them; that
// a store in no loop is followed by its fence; and that a private function
// (an outlined layer, an epilogue) is left alone.
// CHECK-LABEL: func.func @serial
// CHECK: scf.for
// CHECK: scf.for
// CHECK: vector.store {{.*}} {nontemporal = true}
// CHECK: }
// CHECK-NEXT: llvm.fence seq_cst
// CHECK-NEXT: scf.forall
// CHECK: vector.store {{.*}} {nontemporal = true}
// CHECK-NEXT: llvm.fence seq_cst
// CHECK-NEXT: return
// CHECK-LABEL: func.func private @layer
// CHECK-NOT: nontemporal
// CHECK-NOT: llvm.fence
func.func @serial(%big: memref<2048xf32>, %out: memref<2xf32>, %v: vector<32xf32>) {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %c32 = arith.constant 32 : index
  %c2048 = arith.constant 2048 : index
  scf.for %s = %c0 to %c2 step %c2 {
    scf.for %i = %c0 to %c2048 step %c32 {
      %row = memref.subview %big[%i] [32] [1] : memref<2048xf32> to memref<32xf32, strided<[1], offset: ?>>
      vector.transfer_write %v, %row[%c0] {in_bounds = [true]} : vector<32xf32>, memref<32xf32, strided<[1], offset: ?>>
    }
    scf.forall (%t) = (0) to (2) step (1) {
      %x = memref.load %big[%t] : memref<2048xf32>
      memref.store %x, %out[%t] : memref<2xf32>
    }
  }
  vector.transfer_write %v, %big[%c0] {in_bounds = [true]} : vector<32xf32>, memref<2048xf32>
  return
}
func.func private @layer(%big: memref<2048xf32>, %v: vector<32xf32>) {
  %c0 = arith.constant 0 : index
  vector.transfer_write %v, %big[%c0] {in_bounds = [true]} : vector<32xf32>, memref<2048xf32>
  return
}
