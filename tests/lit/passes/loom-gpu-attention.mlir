// RUN: loom-opt %s -split-input-file -loom-gpu-attention -canonicalize -cse | FileCheck %s

// Tests that a causal attention left on tensors by bufferization becomes
// one scf.parallel iteration per (batch, query row) over the buffers, with
// the query row and the output row in registers (Dh <= 64): q_i loaded
// once, then an online softmax over keys [0, i + 1) carrying the running
// max, the sum and the 4 output values (score scale * q_i . k_j, the row
// rescaled and p * v_j added), and the row divided by the sum (0 when no
// key was attended) stored once; no [Tq, Tk] buffer anywhere.
// CHECK-LABEL: func.func @registers
// CHECK-SAME: (%[[Q:.*]]: memref<2x8x4xf32>, %[[K:.*]]: memref<2x8x4xf32>, %[[V:.*]]: memref<2x8x4xf32>)
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %[[O:.*]] = memref.alloc() : memref<2x8x4xf32>
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel (%[[B:.*]], %[[I:.*]]) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %{{.*}})
// CHECK-COUNT-4: memref.load %[[Q]][%[[B]], %[[I]], %{{.*}}]
// CHECK: %[[END:.*]] = arith.minsi
// CHECK: %[[R:.*]]:6 = scf.for %[[J:.*]] = %{{.*}} to %[[END]] step %{{.*}} iter_args(%[[M:.*]] = %[[NEGINF]], %[[L:.*]] = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}) -> (f32, f32, f32, f32, f32, f32)
// CHECK-COUNT-4: memref.load %[[K]][%[[B]], %[[J]], %{{.*}}]
// CHECK: %[[S:.*]] = arith.mulf %{{.*}}, %[[SCALE]] : f32
// CHECK: %[[MNEW:.*]] = arith.maximumf %[[M]], %[[S]] : f32
// CHECK: %[[CORR:.*]] = math.exp
// CHECK: %[[P:.*]] = math.exp
// CHECK: %[[LNEW:.*]] = math.fma %[[L]], %[[CORR]], %[[P]] : f32
// CHECK-COUNT-4: arith.mulf %{{.*}}, %[[CORR]] : f32
// CHECK: memref.load %[[V]][%[[B]], %[[J]], %{{.*}}]
// CHECK: scf.yield %[[MNEW]], %[[LNEW]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : f32, f32, f32, f32, f32, f32
// CHECK: arith.cmpf ogt, %[[R]]#1
// CHECK: %[[INV:.*]] = arith.select
// CHECK: %[[O0:.*]] = arith.mulf %[[R]]#2, %[[INV]] : f32
// CHECK: memref.store %[[O0]], %[[O]][%[[B]], %[[I]], %{{.*}}]
// CHECK: return %[[O]]
func.func @registers(%q: memref<2x8x4xf32>, %k: memref<2x8x4xf32>, %v: memref<2x8x4xf32>) -> memref<2x8x4xf32> {
  %qt = bufferization.to_tensor %q : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %kt = bufferization.to_tensor %k : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %vt = bufferization.to_tensor %v : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %o = loom.attention %qt, %kt, %vt, causal = true, scale = 5.000000e-01 : tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  %ob = bufferization.to_buffer %o : tensor<2x8x4xf32> to memref<2x8x4xf32>
  return %ob : memref<2x8x4xf32>
}

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
