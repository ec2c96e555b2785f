// RUN: loom-opt %s -split-input-file -loom-gpu-attention="tensor-cores=none" -canonicalize -cse | FileCheck %s

// Tests that a causal attention and its lse left on tensors by
// bufferization become block-tiled loops (Dh <= 64): an scf.parallel over
// query tiles and the 64 threads of a block (`loom.block_threads`; the
// unit batch dim left out), each thread's q row loaded once and scaled;
// per key tile (as many as the block's last query attends), between two
// barriers, the K and V rows staged in workgroup memory (4 elements per
// thread), then 16 keys at a time: scores from the staged K rows (keys
// past the causal bound select -inf), one max, one rescaling, p * v from
// the staged V rows. Queries past Tq store nothing; the lse kernel is the
// same without V: max + log(sum).
func.func @tiled(%q: memref<1x80x4xf32>, %k: memref<1x80x4xf32>, %v: memref<1x80x4xf32>) -> (memref<1x80x4xf32>, memref<1x80xf32>) {
  %qt = bufferization.to_tensor %q : memref<1x80x4xf32> to tensor<1x80x4xf32>
  %kt = bufferization.to_tensor %k : memref<1x80x4xf32> to tensor<1x80x4xf32>
  %vt = bufferization.to_tensor %v : memref<1x80x4xf32> to tensor<1x80x4xf32>
  %o = loom.attention %qt, %kt, %vt, causal = true, scale = 5.000000e-01 : tensor<1x80x4xf32>, tensor<1x80x4xf32>, tensor<1x80x4xf32>
  %l = loom.attention_lse %qt, %kt, causal = true, scale = 5.000000e-01 : tensor<1x80x4xf32>, tensor<1x80x4xf32> -> tensor<1x80xf32>
  %ob = bufferization.to_buffer %o : tensor<1x80x4xf32> to memref<1x80x4xf32>
  %lb = bufferization.to_buffer %l : tensor<1x80xf32> to memref<1x80xf32>
  return %ob, %lb : memref<1x80x4xf32>, memref<1x80xf32>
}
// CHECK-LABEL: func.func @tiled
// CHECK-SAME: (%[[Q:.*]]: memref<1x80x4xf32>, %[[K:.*]]: memref<1x80x4xf32>, %[[V:.*]]: memref<1x80x4xf32>)
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %[[O:.*]] = memref.alloc() : memref<1x80x4xf32>
// CHECK: scf.parallel (%[[TILE:.*]], %[[T:.*]]) = (%{{.*}}, %{{.*}}) to (%c2, %c64)
// CHECK: %[[SK:.*]] = memref.alloca() : memref<64x4xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.*]] = memref.alloca() : memref<64x4xf32, #gpu.address_space<workgroup>>
// CHECK-COUNT-4: memref.load %[[Q]]
// CHECK-COUNT-4: arith.mulf %{{.*}}, %[[SCALE]] : f32
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[NEGINF]], {{.*}}) -> (f32, f32, f32, f32, f32, f32)
// CHECK: gpu.barrier
// CHECK-COUNT-4: memref.store %{{.*}}, %[[SK]]
// CHECK-COUNT-4: memref.store %{{.*}}, %[[SV]]
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: scf.for %[[C0:.*]] = %c0 to %c64 step %c16 iter_args(%[[M:[a-z0-9_]+]] = %{{[a-z0-9_]+}}, %[[L:[a-z0-9_]+]] = %{{[a-z0-9_]+}}, {{.*}}) -> (f32, f32, f32, f32, f32, f32)
// CHECK-COUNT-4: memref.load %[[SK]][%[[C0]], %{{.*}}]
// CHECK: arith.select %{{.*}}, %{{.*}}, %[[NEGINF]] : f32
// CHECK: %[[MNEW:.*]] = arith.maximumf %[[M]], %{{.*}} : f32
// CHECK: %[[CORR:.*]] = math.exp
// CHECK: arith.mulf %[[L]], %[[CORR]] : f32
// CHECK-COUNT-4: arith.mulf %{{.*}}, %[[CORR]] : f32
// CHECK: math.exp
// CHECK: memref.load %[[SV]][%[[C0]], %{{.*}}]
// CHECK: scf.yield %[[MNEW]]
// CHECK: scf.if
// CHECK-COUNT-4: memref.store %{{.*}}, %[[O]]
// CHECK: } {loom.block_threads = 64 : i64}
// CHECK: %[[LSE:.*]] = memref.alloc() : memref<1x80xf32>
// CHECK: scf.parallel
// CHECK: memref.alloca() : memref<64x4xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: memref.alloca
// CHECK: math.log
// CHECK: memref.store %{{.*}}, %[[LSE]]
// CHECK: } {loom.block_threads = 64 : i64}
// CHECK: return %[[O]], %[[LSE]]

// -----

// Tests that with rows longer than 64 (Dh 128) and a key mask the output
// row is updated in memory instead: zeroed, then per attended key (the
// mask read at [batch, j]) rescaled and v_j added in place.
// CHECK-LABEL: func.func @memory
// CHECK-SAME: (%[[Q:.*]]: memref<2x4x128xf32>, %[[K:.*]]: memref<2x4x128xf32>, %[[V:.*]]: memref<2x4x128xf32>, %[[MASK:.*]]: memref<2x4xi1>)
// CHECK: %[[O:.*]] = memref.alloc() : memref<2x4x128xf32>
// CHECK: scf.parallel (%[[B:.*]], %[[I:.*]]) =
// CHECK: memref.store %{{.*}}, %[[O]][%[[B]], %[[I]], %{{.*}}]
// CHECK: scf.for %[[J:.*]] = {{.*}} iter_args({{.*}}) -> (f32, f32)
// CHECK: %[[KEEP:.*]] = memref.load %[[MASK]][%[[B]], %[[J]]]
// CHECK: scf.if %[[KEEP]] -> (f32, f32)
// CHECK: memref.load %[[O]][%[[B]], %[[I]], %{{.*}}]
// CHECK: memref.load %[[V]][%[[B]], %[[J]], %{{.*}}]
// CHECK: memref.store %{{.*}}, %[[O]][%[[B]], %[[I]], %{{.*}}]
func.func @memory(%q: memref<2x4x128xf32>, %k: memref<2x4x128xf32>, %v: memref<2x4x128xf32>, %m: memref<2x4xi1>) -> memref<2x4x128xf32> {
  %qt = bufferization.to_tensor %q : memref<2x4x128xf32> to tensor<2x4x128xf32>
  %kt = bufferization.to_tensor %k : memref<2x4x128xf32> to tensor<2x4x128xf32>
  %vt = bufferization.to_tensor %v : memref<2x4x128xf32> to tensor<2x4x128xf32>
  %mt = bufferization.to_tensor %m : memref<2x4xi1> to tensor<2x4xi1>
  %o = loom.attention %qt, %kt, %vt, mask %mt, causal = false, scale = 5.000000e-01 : tensor<2x4x128xf32>, tensor<2x4x128xf32>, tensor<2x4x128xf32>, tensor<2x4xi1>
  %ob = bufferization.to_buffer %o : tensor<2x4x128xf32> to memref<2x4x128xf32>
  return %ob : memref<2x4x128xf32>
}

// -----

// Tests that the gradient with rows of at most 64 becomes three
// block-tiled loops: query blocks (Dh 40 split into 2 slices of 20 dQ
// columns, 2 tiles of 64 queries; K and V tiles staged between barriers,
// then one key at a time: P recomputed, dQ accumulated; delta stored),
// key blocks for dV (8 accumulators; staged Q, dO and lse tiles from the
// first tile that attends the block) and key blocks for dK (2 slices of 20;
// staged Q, dO, lse and delta).
func.func @grad(%q: memref<1x70x40xf32>, %k: memref<1x70x40xf32>, %v: memref<1x70x8xf32>, %o: memref<1x70x8xf32>, %l: memref<1x70xf32>, %do: memref<1x70x8xf32>) -> (memref<1x70x40xf32>, memref<1x70x40xf32>, memref<1x70x8xf32>) {
  %qt = bufferization.to_tensor %q : memref<1x70x40xf32> to tensor<1x70x40xf32>
  %kt = bufferization.to_tensor %k : memref<1x70x40xf32> to tensor<1x70x40xf32>
  %vt = bufferization.to_tensor %v : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %ot = bufferization.to_tensor %o : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %lt = bufferization.to_tensor %l : memref<1x70xf32> to tensor<1x70xf32>
  %dot = bufferization.to_tensor %do : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %dq, %dk, %dv = loom.attention_grad %qt, %kt, %vt, %ot, %lt, %dot, causal = true, scale = 5.000000e-01 : tensor<1x70x40xf32>, tensor<1x70x40xf32>, tensor<1x70x8xf32>, tensor<1x70x8xf32>, tensor<1x70xf32>
  %a = bufferization.to_buffer %dq : tensor<1x70x40xf32> to memref<1x70x40xf32>
  %b = bufferization.to_buffer %dk : tensor<1x70x40xf32> to memref<1x70x40xf32>
  %c = bufferization.to_buffer %dv : tensor<1x70x8xf32> to memref<1x70x8xf32>
  return %a, %b, %c : memref<1x70x40xf32>, memref<1x70x40xf32>, memref<1x70x8xf32>
}
// CHECK-LABEL: func.func @grad
// CHECK: %[[DELTA:.*]] = memref.alloc() : memref<1x70xf32>
// CHECK: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = (%c0, %c0, %c0) to (%c2, %c2, %c64)
// CHECK: %[[SK:.*]] = memref.alloca() : memref<64x40xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.*]] = memref.alloca() : memref<64x8xf32, #gpu.address_space<workgroup>>
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[SK]]
// CHECK: memref.store %{{.*}}, %[[SV]]
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0 to %c64 step %c1
// CHECK: math.exp
// CHECK: memref.store %{{.*}}, %[[DELTA]]
// CHECK: } {loom.block_threads = 64 : i64}
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = (%c0, %c0) to (%c2, %c64)
// CHECK-COUNT-3: memref.alloca()
// CHECK-NOT: memref.alloca
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: math.exp
// CHECK: } {loom.block_threads = 64 : i64}
// CHECK: scf.parallel (%{{.*}}, %{{.*}}, %{{.*}}) = (%c0, %c0, %c0) to (%c2, %c2, %c64)
// CHECK-COUNT-4: memref.alloca()
// CHECK: memref.load %[[DELTA]]
// CHECK: } {loom.block_threads = 64 : i64}
