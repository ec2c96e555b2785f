// RUN: loom-opt %s -split-input-file -loom-gpu-attention -canonicalize -cse | FileCheck %s
// RUN: loom-opt %s -split-input-file -loom-gpu-attention="tensor-cores=tf32" -canonicalize -cse | FileCheck %s --check-prefix=TF32
// RUN: not loom-opt %s -split-input-file -loom-gpu-attention="tensor-cores=fp8" 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that with tensor cores (3xtf32, the default) a causal attention
// with Dh 12 becomes blocks of 128 threads (4 warps) per 64 queries: the
// K (then P) and V tiles in workgroup memory, rows padded for the
// fragment reads (K/P 68 = 4 mod 8, V 24 = 8 mod 16), the scaled q rows as
// fragments before the key loop, which carries each lane's two running
// maxima and sums and its 16 x 8 output accumulators (two for Dh 12, the
// last half past Dh). Per key tile: barrier, K and V staged, barrier;
// per 8 keys and 8 of Dh three mma.sync (small x big, big x small,
// big x big); the row max across the lanes of a quad (xor 1, xor 2),
// exp, a barrier, P stored in K's tile, a barrier, then P V on mma.sync. After the loop the sums
// across the quad and the stores of rows inside Tq.
// CHECK-LABEL: func.func @mma
// CHECK: %[[O:.*]] = memref.alloc() : memref<2x80x12xf32>
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c2, %c2, %c128)
// CHECK: %[[SK:.*]] = memref.alloca() : memref<64x68xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.*]] = memref.alloca() : memref<64x24xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: memref.alloca
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, vector<2x2xf32>, vector<2x2xf32>)
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[SK]]
// CHECK: memref.store %{{.*}}, %[[SV]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[SK]]
// CHECK: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 8], tf32Enabled}
// CHECK-NEXT: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 8], tf32Enabled}
// CHECK-NEXT: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 8], tf32Enabled}
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32, %c32_i32
// CHECK: math.exp
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[SK]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[SK]]
// CHECK: memref.load %[[SV]]
// CHECK: nvgpu.mma.sync
// CHECK: scf.yield
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32
// CHECK: arith.addf
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32, %c32_i32
// CHECK: scf.if
// CHECK: memref.store %{{.*}}, %[[O]]
// CHECK: } {loom.block_threads = 128 : i64}
// The lse kernel: K alone, no P V.
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c2, %c2, %c128)
// CHECK: memref.alloca() : memref<64x12xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: memref.alloca
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32) {
// CHECK: nvgpu.mma.sync
// CHECK: math.log
// CHECK: } {loom.block_threads = 128 : i64}

// With tf32 one mma.sync per product: the next op loads the next K values.
// TF32-LABEL: func.func @mma
// TF32: %[[S:.*]] = nvgpu.mma.sync({{.*}}, %cst{{.*}}) {mmaShape = [16, 8, 8], tf32Enabled}
// TF32-NEXT: memref.load
// TF32: nvgpu.mma.sync({{.*}}, %[[S]]) {mmaShape = [16, 8, 8], tf32Enabled}
// TF32-NEXT: arith.addi

// BAD: tensor-cores must be 3xtf32, tf32, bf16 or none, got 'fp8'
func.func @mma(%q: memref<2x80x12xf32>, %k: memref<2x80x12xf32>, %v: memref<2x80x12xf32>) -> (memref<2x80x12xf32>, memref<2x80xf32>) {
  %qt = bufferization.to_tensor %q : memref<2x80x12xf32> to tensor<2x80x12xf32>
  %kt = bufferization.to_tensor %k : memref<2x80x12xf32> to tensor<2x80x12xf32>
  %vt = bufferization.to_tensor %v : memref<2x80x12xf32> to tensor<2x80x12xf32>
  %o = loom.attention %qt, %kt, %vt, causal = true, scale = 5.000000e-01 : tensor<2x80x12xf32>, tensor<2x80x12xf32>, tensor<2x80x12xf32>
  %l = loom.attention_lse %qt, %kt, causal = true, scale = 5.000000e-01 : tensor<2x80x12xf32>, tensor<2x80x12xf32> -> tensor<2x80xf32>
  %ob = bufferization.to_buffer %o : tensor<2x80x12xf32> to memref<2x80x12xf32>
  %lb = bufferization.to_buffer %l : tensor<2x80xf32> to memref<2x80xf32>
  return %ob, %lb : memref<2x80x12xf32>, memref<2x80xf32>
}

// -----

// Tests that the gradient takes the tensor cores too, three kernels of
// 128 threads per 64 rows. Query blocks: the delta of the lane's two rows
// summed across its quad, tiles of 32 keys (K 44 = 4 mod 8 for Dh 40, V
// 12 for Dh 8, dS 36), S and dP on mma.sync, dS through shared memory, a
// barrier, dQ += dS K on mma.sync. Key blocks for dV (Q, dO, lse staged;
// P^T through shared memory, dV += P^T dO) and for dK (delta staged too;
// dP^T = V dO^T, dS^T, dK += dS^T Q).
// CHECK-LABEL: func.func @grad
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c2, %c128)
// CHECK: gpu.shuffle xor %{{.*}}, %c1_i32, %c32_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32, %c32_i32
// CHECK: %[[SK:.*]] = memref.alloca() : memref<32x44xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SV:.*]] = memref.alloca() : memref<32x12xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SDS:.*]] = memref.alloca() : memref<64x36xf32, #gpu.address_space<workgroup>>
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: nvgpu.mma.sync
// CHECK: math.exp
// CHECK: memref.store %{{.*}}, %[[SDS]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[SDS]]
// CHECK: memref.load %[[SK]]
// CHECK: nvgpu.mma.sync
// CHECK: } {loom.block_threads = 128 : i64}
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c2, %c128)
// CHECK: memref.alloca() : memref<32x44xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<32x12xf32, #gpu.address_space<workgroup>>
// CHECK: memref.alloca() : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SPT:.*]] = memref.alloca() : memref<64x36xf32, #gpu.address_space<workgroup>>
// CHECK: nvgpu.mma.sync
// CHECK: memref.store %{{.*}}, %[[SPT]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[SPT]]
// CHECK: nvgpu.mma.sync
// CHECK: } {loom.block_threads = 128 : i64}
// CHECK: scf.parallel ({{.*}}) = ({{.*}}) to (%c2, %c128)
// CHECK-COUNT-2: memref.alloca() : memref<32xf32, #gpu.address_space<workgroup>>
// CHECK: %[[SDST:.*]] = memref.alloca() : memref<64x36xf32, #gpu.address_space<workgroup>>
// CHECK: memref.store %{{.*}}, %[[SDST]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[SDST]]
// CHECK: nvgpu.mma.sync
// CHECK: } {loom.block_threads = 128 : i64}
func.func @grad(%q: memref<1x70x40xf32>, %k: memref<1x70x40xf32>, %v: memref<1x70x8xf32>, %o: memref<1x70x8xf32>, %l: memref<1x70xf32>, %do: memref<1x70x8xf32>) -> (memref<1x70x40xf32>, memref<1x70x40xf32>, memref<1x70x8xf32>) {
  %qt = bufferization.to_tensor %q : memref<1x70x40xf32> to tensor<1x70x40xf32>
  %kt = bufferization.to_tensor %k : memref<1x70x40xf32> to tensor<1x70x40xf32>
  %vt = bufferization.to_tensor %v : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %ot = bufferization.to_tensor %o : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %lt = bufferization.to_tensor %l : memref<1x70xf32> to tensor<1x70xf32>
  %dot = bufferization.to_tensor %do : memref<1x70x8xf32> to tensor<1x70x8xf32>
  %dq, %dk, %dv = loom.attention_grad %qt, %kt, %vt, %ot, %lt, %dot, causal = true, scale = 5.000000e-01 : tensor<1x70x40xf32>, tensor<1x70x40xf32>, tensor<1x70x8xf32>, tensor<1x70x8xf32>, tensor<1x70xf32>
  %dqb = bufferization.to_buffer %dq : tensor<1x70x40xf32> to memref<1x70x40xf32>
  %dkb = bufferization.to_buffer %dk : tensor<1x70x40xf32> to memref<1x70x40xf32>
  %dvb = bufferization.to_buffer %dv : tensor<1x70x8xf32> to memref<1x70x8xf32>
  return %dqb, %dkb, %dvb : memref<1x70x40xf32>, memref<1x70x40xf32>, memref<1x70x8xf32>
}
