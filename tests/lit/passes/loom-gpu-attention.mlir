// RUN: loom-opt %s -loom-gpu-attention -canonicalize -cse | FileCheck %s

// Tests that a causal attention left on tensors by bufferization becomes
// one scf.parallel iteration per (batch, query row) over the buffers: the
// output row zeroed, an online softmax over keys [0, i + 1) (score
// scale * q_i . k_j, running max and sum, the row rescaled and v_j added in
// place), then the row divided by the sum (0 when no key was attended); no
// [Tq, Tk] buffer anywhere.
// CHECK-LABEL: func.func @f
// CHECK-SAME: (%[[Q:.*]]: memref<2x8x4xf32>, %[[K:.*]]: memref<2x8x4xf32>, %[[V:.*]]: memref<2x8x4xf32>)
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG: %[[NEGINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %[[O:.*]] = memref.alloc() : memref<2x8x4xf32>
// CHECK-NOT: memref.alloc
// CHECK: scf.parallel (%[[B:.*]], %[[I:.*]]) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %{{.*}})
// CHECK: memref.store %{{.*}}, %[[O]][%[[B]], %[[I]], %{{.*}}]
// CHECK: %[[END0:.*]] = arith.addi %[[I]], %{{.*}} : index
// CHECK: %[[END:.*]] = arith.minsi
// CHECK: %[[ML:.*]]:2 = scf.for %[[J:.*]] = %{{.*}} to %[[END]] step %{{.*}} iter_args(%[[M:.*]] = %[[NEGINF]], %[[L:.*]] = %{{.*}}) -> (f32, f32)
// CHECK: %[[DOT:.*]] = scf.for
// CHECK: memref.load %[[Q]][%[[B]], %[[I]], %{{.*}}]
// CHECK: memref.load %[[K]][%[[B]], %[[J]], %{{.*}}]
// CHECK: %[[S:.*]] = arith.mulf %[[DOT]], %[[SCALE]] : f32
// CHECK: %[[MNEW:.*]] = arith.maximumf %[[M]], %[[S]] : f32
// CHECK: %[[CORR:.*]] = math.exp
// CHECK: %[[P:.*]] = math.exp
// CHECK: scf.for
// CHECK: memref.load %[[O]]
// CHECK: memref.load %[[V]][%[[B]], %[[J]], %{{.*}}]
// CHECK: memref.store %{{.*}}, %[[O]]
// CHECK: scf.yield %[[MNEW]], %{{.*}} : f32, f32
// CHECK: arith.cmpf ogt, %[[ML]]#1
// CHECK: arith.divf %{{.*}}, %[[ML]]#1
// CHECK: return %[[O]]
func.func @f(%q: memref<2x8x4xf32>, %k: memref<2x8x4xf32>, %v: memref<2x8x4xf32>) -> memref<2x8x4xf32> {
  %qt = bufferization.to_tensor %q : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %kt = bufferization.to_tensor %k : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %vt = bufferization.to_tensor %v : memref<2x8x4xf32> to tensor<2x8x4xf32>
  %o = loom.attention %qt, %kt, %vt, causal = true, scale = 5.000000e-01 : tensor<2x8x4xf32>, tensor<2x8x4xf32>, tensor<2x8x4xf32>
  %ob = bufferization.to_buffer %o : tensor<2x8x4xf32> to memref<2x8x4xf32>
  return %ob : memref<2x8x4xf32>
}
