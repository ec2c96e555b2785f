// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-gpu-outline-kernels

// Tests that a loop of dynamic size is refused: launches are static.
func.func @dynamic(%a: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{has dynamic bounds or steps; the GPU pipeline expects static shapes (bind every dim)}}
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %x = memref.load %a[%i] : memref<?xf32>
    memref.store %x, %a[%i] : memref<?xf32>
  }
  return
}

// -----

// Tests that an allocation inside a loop body is refused: a kernel cannot
// allocate.
func.func @alloc_inside(%a: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    // expected-error @+1 {{allocates inside device work; a kernel cannot (expected every buffer at the top level)}}
    %t = memref.alloc() : memref<4xf32>
    %x = memref.load %t[%c0] : memref<4xf32>
    memref.store %x, %a[%i] : memref<8xf32>
  }
  return
}

// -----

// Tests that a host load whose buffer a launch in between overwrites is
// refused rather than read too late by the kernel that uses it.
func.func @overwritten(%a: memref<8xf32>, %b: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  // expected-note @+1 {{read here}}
  %x0 = memref.load %a[%c0] : memref<8xf32>
  // expected-error @+1 {{writes a buffer whose value a later kernel reads as it was before; the GPU pipeline cannot keep both}}
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %y = memref.load %b[%i] : memref<8xf32>
    memref.store %y, %a[%i] : memref<8xf32>
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %x0, %b[%i] : memref<8xf32>
  }
  return
}

// -----

// Tests that a barrier in a loop that does not say which dim is the
// block's threads is refused.
func.func @barrier_without_block(%a: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    // expected-error @+1 {{needs the threads of a block, but its loop has no loom.block_threads}}
    gpu.barrier
    %x = memref.load %a[%i] : memref<64xf32>
    memref.store %x, %a[%i] : memref<64xf32>
  }
  return
}

// -----

// Tests that a block size that is not the innermost dim's is refused.
func.func @block_mismatch(%a: memref<4x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  // expected-error @+1 {{has loom.block_threads = 32 but its innermost dim has 64 iterations (expected the same, at most 1024)}}
  scf.parallel (%b, %t) = (%c0, %c0) to (%c4, %c64) step (%c1, %c1) {
    %x = memref.load %a[%b, %t] : memref<4x64xf32>
    memref.store %x, %a[%b, %t] : memref<4x64xf32>
  } {loom.block_threads = 32 : i64}
  return
}
