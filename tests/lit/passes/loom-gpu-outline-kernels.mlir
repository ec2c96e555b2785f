// RUN: loom-opt %s -split-input-file -loom-gpu-outline-kernels -canonicalize -cse | FileCheck %s

// Tests that each parallel loop becomes a launch of 256-thread blocks over
// its 1000 points (4 blocks, a bounds check in the kernel), that a scalar
// the host loads is read by the kernel itself, that a weight slice passes
// as the address of its first element (its offset, 2048, leaves the
// kernel's type for loom.arg_offsets), and that the second loop, the same
// code over another slice, launches the same kernel.
// CHECK-LABEL: func.func @f
// CHECK-SAME: (%[[A:.*]]: memref<1000xf32>, %[[W:.*]]: memref<4096xf32>, %[[OUT:.*]]: memref<1000xf32>, %[[H:.*]]: memref<4xf32>)
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[C256:.*]] = arith.constant 256 : index
// CHECK-NOT: memref.load
// CHECK: %[[T:.*]] = memref.alloc() : memref<1000xf32>
// CHECK: %[[W0:.*]] = memref.reinterpret_cast %[[W]] to offset: [0], sizes: [1000], strides: [1]
// CHECK: gpu.launch_func @loom_kernels::@f_0_loop blocks in (%[[C4]], %{{.*}}, %{{.*}}) threads in (%[[C256]], %{{.*}}, %{{.*}}) args(%[[A]] : memref<1000xf32>, %[[W0]] : memref<1000xf32>, %[[H]] : memref<4xf32>, %[[T]] : memref<1000xf32>) {loom.arg_offsets = array<i64: 0, 0, 0, 0>, loom.writes = array<i1: false, false, false, true>}
// CHECK: %[[W1:.*]] = memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [1000], strides: [1] : memref<1000xf32, strided<[1], offset: 2048>> to memref<1000xf32>
// CHECK: gpu.launch_func @loom_kernels::@f_0_loop blocks in (%[[C4]], %{{.*}}, %{{.*}}) threads in (%[[C256]], %{{.*}}, %{{.*}}) args(%[[T]] : memref<1000xf32>, %[[W1]] : memref<1000xf32>, %[[H]] : memref<4xf32>, %[[OUT]] : memref<1000xf32>) {loom.arg_offsets = array<i64: 0, 2048, 0, 0>
// CHECK: gpu.module @loom_kernels
// CHECK: gpu.func @f_0_loop(%[[KA:.*]]: memref<1000xf32>, %[[KW:.*]]: memref<1000xf32>, %[[KH:.*]]: memref<4xf32>, %[[KT:.*]]: memref<1000xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK: %[[LR:.*]] = memref.load %[[KH]]
// CHECK: %[[B:.*]] = gpu.block_id x
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK: %[[BS:.*]] = arith.muli %[[B]], %{{.*}}
// CHECK: %[[I:.*]] = arith.addi %[[BS]], %[[TID]]
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[I]], %{{.*}}
// CHECK: scf.if %[[IN]]
// CHECK: memref.load %[[KA]][%[[I]]]
// CHECK: memref.load %[[KW]][%[[I]]]
// CHECK: arith.mulf %{{.*}}, %[[LR]]
// CHECK: memref.store %{{.*}}, %[[KT]][%[[I]]]
// CHECK-NOT: gpu.func
func.func @f(%a: memref<1000xf32>, %w: memref<4096xf32>, %out: memref<1000xf32>, %hyper: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c1000 = arith.constant 1000 : index
  %lr = memref.load %hyper[%c0] : memref<4xf32>
  %w0 = memref.subview %w[0] [1000] [1] : memref<4096xf32> to memref<1000xf32, strided<[1]>>
  %w1 = memref.subview %w[2048] [1000] [1] : memref<4096xf32> to memref<1000xf32, strided<[1], offset: 2048>>
  %t = memref.alloc() : memref<1000xf32>
  scf.parallel (%i) = (%c0) to (%c1000) step (%c1) {
    %x = memref.load %a[%i] : memref<1000xf32>
    %y = memref.load %w0[%i] : memref<1000xf32, strided<[1]>>
    %z = arith.mulf %x, %y : f32
    %s = arith.mulf %z, %lr : f32
    memref.store %s, %t[%i] : memref<1000xf32>
  }
  scf.parallel (%i) = (%c0) to (%c1000) step (%c1) {
    %x = memref.load %t[%i] : memref<1000xf32>
    %y = memref.load %w1[%i] : memref<1000xf32, strided<[1], offset: 2048>>
    %z = arith.mulf %x, %y : f32
    %s = arith.mulf %z, %lr : f32
    memref.store %s, %out[%i] : memref<1000xf32>
  }
  return
}

// -----

// Tests that a reduction whose reduction dims come before its parallel one
// (a bias gradient: the sum over [rows, 64] of a [rows, 64, 96] buffer)
// becomes a thread per output, each running the reduction loops itself,
// rather than a single-thread kernel over the whole sum.
// CHECK-LABEL: func.func @column_sum
// CHECK: gpu.launch_func @loom_kernels::@column_sum_0_loop
// CHECK-NOT: _serial
// CHECK: gpu.func @column_sum_0_loop{{.*}}known_block_size = array<i32: 96, 1, 1>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step
// CHECK: memref.load %{{.*}} : memref<8x64x96xf32>
func.func @column_sum(%x: memref<8x64x96xf32>, %out: memref<96xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>,
                                   affine_map<(d0, d1, d2) -> (d2)>],
                  iterator_types = ["reduction", "reduction", "parallel"]}
      ins(%x : memref<8x64x96xf32>) outs(%out : memref<96xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %sum = arith.addf %acc, %in : f32
    linalg.yield %sum : f32
  }
  return
}

// -----

// Tests that a scatter-add over rows (table[ids[r], :] += grad[r, :], an
// embedding's gradient; ids repeat) becomes a thread per column walking the
// rows in order, and that one whose inner loop also reads column 0 of the
// row it writes (another thread's element) stays a single-thread kernel.
// CHECK-LABEL: func.func @scatter_rows
// CHECK: gpu.launch_func @loom_kernels::@scatter_rows_0_loop
// CHECK: gpu.launch_func @loom_kernels::@scatter_rows_1_serial
// CHECK: gpu.func @scatter_rows_0_loop{{.*}}known_block_size = array<i32: 32, 1, 1>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step
// CHECK: memref.load %{{.*}} : memref<16xi32>
// CHECK: gpu.func @scatter_rows_1_serial{{.*}}known_block_size = array<i32: 1, 1, 1>
func.func @scatter_rows(%ids: memref<16xi32>, %grad: memref<16x32xf32>, %table: memref<8x32xf32>, %other: memref<8x32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.constant 32 : index
  scf.for %r = %c0 to %c16 step %c1 {
    %id = memref.load %ids[%r] : memref<16xi32>
    %i = arith.index_cast %id : i32 to index
    %dst = memref.subview %table[%i, 0] [1, 32] [1, 1] : memref<8x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    %src = memref.subview %grad[%r, 0] [1, 32] [1, 1] : memref<16x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
      %a = memref.load %dst[%j] : memref<32xf32, strided<[1], offset: ?>>
      %b = memref.load %src[%j] : memref<32xf32, strided<[1], offset: ?>>
      %sum = arith.addf %a, %b : f32
      memref.store %sum, %dst[%j] : memref<32xf32, strided<[1], offset: ?>>
      scf.reduce
    }
  }
  scf.for %r = %c0 to %c16 step %c1 {
    %id = memref.load %ids[%r] : memref<16xi32>
    %i = arith.index_cast %id : i32 to index
    %dst = memref.subview %other[%i, 0] [1, 32] [1, 1] : memref<8x32xf32> to memref<32xf32, strided<[1], offset: ?>>
    scf.parallel (%j) = (%c0) to (%c32) step (%c1) {
      %a = memref.load %dst[%c0] : memref<32xf32, strided<[1], offset: ?>>
      %b = memref.load %dst[%j] : memref<32xf32, strided<[1], offset: ?>>
      %sum = arith.addf %a, %b : f32
      memref.store %sum, %dst[%j] : memref<32xf32, strided<[1], offset: ?>>
      scf.reduce
    }
  }
  return
}

// -----

// Tests that a copy becomes an element-wise kernel (2-D indices from the
// linear thread index, the last dimension fastest) and that a loop without
// parallel iterations (a full reduction) becomes one single-thread kernel,
// the host keeping the view between them.
// CHECK-LABEL: func.func @copy_and_serial
// CHECK-SAME: (%[[A:.*]]: memref<4x8xf32>, %[[B:.*]]: memref<4x8xf32>, %[[S:.*]]: memref<f32>)
// CHECK: gpu.launch_func @loom_kernels::@copy_and_serial_0_copy blocks in (%[[C1:.*]], %{{.*}}, %{{.*}}) threads in (%[[C32:.*]], %{{.*}}, %{{.*}}) args(%[[A]] : memref<4x8xf32>, %[[B]] : memref<4x8xf32>) {{.*}}loom.writes = array<i1: false, true>
// CHECK: %[[FLAT:.*]] = memref.collapse_shape %[[B]]
// CHECK: gpu.launch_func @loom_kernels::@copy_and_serial_1_serial blocks in (%[[C1]], %{{.*}}, %{{.*}}) threads in (%[[C1]], %{{.*}}, %{{.*}}) args(%[[FLAT]] : memref<32xf32>, %[[S]] : memref<f32>)
// CHECK: gpu.func @copy_and_serial_0_copy
// CHECK: %[[I:.*]] = arith.addi
// CHECK-DAG: %[[COL:.*]] = arith.remui %[[I]], %{{.*}}
// CHECK-DAG: %[[ROW:.*]] = arith.divui %[[I]], %{{.*}}
// CHECK: %[[X:.*]] = memref.load %{{.*}}[%[[ROW]], %[[COL]]]
// CHECK: memref.store %[[X]], %{{.*}}[%[[ROW]], %[[COL]]]
// CHECK: gpu.func @copy_and_serial_1_serial{{.*}}known_block_size = array<i32: 1, 1, 1>
// CHECK: scf.for
func.func @copy_and_serial(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %s: memref<f32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
  %flat = memref.collapse_shape %b [[0, 1]] : memref<4x8xf32> into memref<32xf32>
  scf.for %i = %c0 to %c32 step %c1 {
    %x = memref.load %flat[%i] : memref<32xf32>
    %acc = memref.load %s[] : memref<f32>
    %y = arith.addf %acc, %x : f32
    memref.store %y, %s[] : memref<f32>
  }
  return
}

// -----

// Tests that a matmul (6 x 16 @ 16 x 10, B a slice at offset 64) becomes
// one thread per 4 x 4 block of C (2 x 3 blocks, columns fastest): four
// clamped rows of A and columns of B per k, 16 fused multiply-adds carried
// over K, then C += the accumulators where the row and column are inside.
// CHECK-LABEL: func.func @mm
// CHECK: gpu.launch_func @loom_kernels::@mm_0_matmul blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%[[C6:.*]], %{{.*}}, %{{.*}}) args({{.*}}) {loom.arg_offsets = array<i64: 0, 64, 0>, loom.writes = array<i1: false, false, true>}
// CHECK: gpu.func @mm_0_matmul(%[[A:.*]]: memref<6x16xf32>, %[[B:.*]]: memref<16x10xf32>, %[[C:.*]]: memref<6x10xf32>) kernel attributes {known_block_size = array<i32: 6, 1, 1>}
// CHECK: %[[TN:.*]] = arith.remui %{{.*}}, %{{.*}} : index
// CHECK: %[[N0:.*]] = arith.muli %[[TN]], %{{.*}} : index
// CHECK: %[[COL0:.*]] = arith.minui %[[N0]], %{{.*}} : index
// CHECK: %[[ACC:.*]]:16 = scf.for %[[K:.*]] = {{.*}} iter_args(
// CHECK-COUNT-4: memref.load %[[A]][%{{.*}}, %[[K]]]
// CHECK: memref.load %[[B]][%[[K]], %[[COL0]]]
// CHECK-COUNT-3: memref.load %[[B]]
// CHECK-COUNT-16: math.fma
// CHECK: scf.yield
// CHECK: %[[IN:.*]] = arith.andi
// CHECK: scf.if %[[IN]]
// CHECK: %[[OLD:.*]] = memref.load %[[C]]
// CHECK: %[[SUM:.*]] = arith.addf %[[OLD]], %[[ACC]]#0
// CHECK: memref.store %[[SUM]], %[[C]]
func.func @mm(%a: memref<6x16xf32>, %w: memref<4096xf32>, %c: memref<6x10xf32>) {
  %wv = memref.subview %w[64] [160] [1] : memref<4096xf32> to memref<160xf32, strided<[1], offset: 64>>
  %b = memref.expand_shape %wv [[0, 1]] output_shape [16, 10] : memref<160xf32, strided<[1], offset: 64>> into memref<16x10xf32, strided<[10, 1], offset: 64>>
  linalg.matmul ins(%a, %b : memref<6x16xf32>, memref<16x10xf32, strided<[10, 1], offset: 64>>) outs(%c : memref<6x10xf32>)
  return
}

// -----

// Tests that a row reduction (the max over the last 100 of 10 x 100, of
// x * 2) takes a warp per row: 8 rows (256 threads) per block, 2 blocks;
// lane l folds r = l, l + 32, ... into the max from its neutral element
// (-inf), five xor shuffles (16 .. 1) combine the lanes, and lane 0 of a
// warp inside the rows folds the total into the output. A sum over the
// 100 rows of 100 x 10 (lanes would read a column each) keeps a thread per
// output, as does a row too short for a warp (40).
// CHECK-LABEL: func.func @rows
// CHECK: gpu.launch_func @loom_kernels::@rows_0_reduce blocks in (%[[C2:.*]], %{{.*}}, %{{.*}}) threads in (%[[C256:.*]], %{{.*}}, %{{.*}})
// CHECK: gpu.launch_func @loom_kernels::@rows_1_loop
// CHECK: gpu.launch_func @loom_kernels::@rows_2_loop
// CHECK: gpu.func @rows_0_reduce(%[[X:.*]]: memref<10x100xf32>, %[[M:.*]]: memref<10xf32>) kernel attributes {known_block_size = array<i32: 256, 1, 1>}
// CHECK-DAG: %[[NEG:.*]] = arith.constant 0xFF800000 : f32
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK: %[[WARP:.*]] = arith.divui %{{.*}}, %[[C32]]
// CHECK: %[[LANE:.*]] = arith.remui %{{.*}}, %[[C32]]
// CHECK: %[[ROW:.*]] = arith.minui %[[WARP]]
// CHECK: %[[ACC:.*]] = scf.for %[[R:.*]] = %[[LANE]] to %{{.*}} step %[[C32]] iter_args(%[[A:.*]] = %[[NEG]])
// CHECK: %[[V:.*]] = memref.load %[[X]][%[[ROW]], %[[R]]]
// CHECK: %[[V2:.*]] = arith.mulf %[[V]]
// CHECK: arith.maximumf %[[A]], %[[V2]]
// CHECK: gpu.shuffle  xor %[[ACC]], %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.*}}, %c8_i32
// CHECK: gpu.shuffle  xor %{{.*}}, %c4_i32
// CHECK: gpu.shuffle  xor %{{.*}}, %c2_i32
// CHECK: gpu.shuffle  xor %{{.*}}, %c1_i32
// CHECK: %[[TOTAL:.*]] = arith.maximumf
// CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[LANE]]
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[WARP]]
// CHECK: %[[BOTH:.*]] = arith.andi %[[FIRST]], %[[IN]]
// CHECK: scf.if %[[BOTH]]
// CHECK: %[[OLD:.*]] = memref.load %[[M]][%[[ROW]]]
// CHECK: %[[NEW:.*]] = arith.maximumf %[[OLD]], %[[TOTAL]]
// CHECK: memref.store %[[NEW]], %[[M]][%[[ROW]]]
// CHECK: gpu.func @rows_1_loop
// CHECK-NOT: gpu.shuffle
// CHECK: gpu.func @rows_2_loop
// CHECK-NOT: gpu.shuffle
#rows = affine_map<(i, r) -> (i, r)>
#row = affine_map<(i, r) -> (i)>
#cols = affine_map<(j, r) -> (r, j)>
func.func @rows(%x: memref<10x100xf32>, %m: memref<10xf32>, %z: memref<100x10xf32>, %s: memref<10xf32>, %y: memref<10x40xf32>, %t: memref<10xf32>) {
  %two = arith.constant 2.0 : f32
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<10x100xf32>) outs(%m : memref<10xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %d = arith.mulf %v, %two : f32
    %r = arith.maximumf %acc, %d : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#cols, #row], iterator_types = ["parallel", "reduction"]}
      ins(%z : memref<100x10xf32>) outs(%s : memref<10xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#rows, #row], iterator_types = ["parallel", "reduction"]}
      ins(%y : memref<10x40xf32>) outs(%t : memref<10xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Tests that a matmul big enough for a warp tile (70 x 40 @ 40 x 40) takes
// the tensor cores: 2 x 2 warps (128 threads) per 64 x 64 block of C, so
// 2 x 1 blocks. The block's 64 x 32 tile of A and 32 x 64 tile of B are
// double-buffered in shared memory (2 slots each; rows padded to 36 and
// 72: the fragment reads hit 32 banks), 16 elements each per thread,
// neighbouring threads along k for A and n for B: the first step's into
// slot 0, then a barrier. Per step of 32 in k (40: the second step's tail
// loads zeros) the thread loads the next step's elements (k clamped, zero
// past K) before the step's products, which read slot k0 / 32 % 2: per 8
// of k a lane reads A at rows g, g + 8 and k = t, t + 4 into a 4 x 1
// fragment, splits each value into a tf32 head (rounded: + 0x1000, low 13
// bits cleared) and the tf32 of the rest, and each of the warp's 2 x 4
// tiles takes three mma.sync m16n8k8 (small x big, big x small, big x big:
// 24 per step); then it stores the next step's elements into the other
// slot and meets one barrier. C += the accumulators where row and column
// are inside. tensor-cores=none keeps the CUDA-core kernel.
// CHECK-LABEL: func.func @mma
// CHECK: gpu.launch_func @loom_kernels::@mma_0_mma blocks in (%[[C2:.*]], %{{.*}}, %{{.*}}) threads in (%[[C128:.*]], %{{.*}}, %{{.*}})
// CHECK: gpu.func @mma_0_mma(%[[A:.*]]: memref<70x40xf32>, %[[B:.*]]: memref<40x40xf32>, %[[C:.*]]: memref<70x40xf32>) workgroup(%[[SA:[^ ]*]] : memref<2x64x36xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SB:[^ ]*]] : memref<2x32x72xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// CHECK-DAG: %[[MASK:.*]] = arith.constant -8192 : i32
// CHECK-DAG: %[[HALF:.*]] = arith.constant 4096 : i32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<2x2xf32>
// CHECK: memref.load %[[A]]
// CHECK: memref.store %{{.*}}, %[[SA]][%c0
// CHECK-COUNT-15: memref.store %{{.*}}, %[[SA]][%c0
// CHECK-COUNT-16: memref.store %{{.*}}, %[[SB]][%c0
// CHECK-NEXT: gpu.barrier
// CHECK: scf.for %[[K0:.*]] = %{{.*}} to %c40 step %c32 iter_args({{.*}} = %[[ZERO]], {{.*}}) -> (vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>, vector<2x2xf32>)
// CHECK: %[[CUR:.*]] = arith.remui %{{.*}}, %c2
// CHECK: %[[NXT:.*]] = arith.subi %c1{{.*}}, %[[CUR]]
// CHECK: %[[K1:.*]] = arith.addi %[[K0]], %c32
// CHECK: %[[KK:.*]] = arith.addi %[[K1]], %{{.*}}
// CHECK: %[[KIN:.*]] = arith.cmpi ult, %[[KK]], %c40
// CHECK: %[[KC:.*]] = arith.minui %[[KK]], %c39
// CHECK: %[[X:.*]] = memref.load %[[A]][%{{.*}}, %[[KC]]]
// CHECK: arith.select %[[KIN]], %[[X]]
// CHECK-NOT: memref.store
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %c32{{.*}} step %c8
// CHECK-COUNT-4: memref.load %[[SA]][%[[CUR]]
// CHECK: arith.addi %{{.*}}, %[[HALF]] : i32
// CHECK: arith.andi %{{.*}}, %[[MASK]] : i32
// CHECK: vector.from_elements {{.*}} : vector<4x1xf32>
// CHECK: arith.subf
// CHECK: memref.load %[[SB]][%[[CUR]]
// CHECK: vector.from_elements {{.*}} : vector<2x1xf32>
// CHECK-COUNT-24: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 8], tf32Enabled}
// CHECK-NOT: nvgpu.mma.sync
// CHECK: scf.yield
// CHECK-COUNT-16: memref.store %{{.*}}, %[[SA]][%[[NXT]]
// CHECK-COUNT-16: memref.store %{{.*}}, %[[SB]][%[[NXT]]
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: scf.yield
// CHECK: scf.if
// CHECK: vector.extract %{{.*}}#0[0, 0]
// CHECK: memref.load %[[C]]
// CHECK: arith.addf
// CHECK: memref.store %{{.*}}, %[[C]]
// RUN: loom-opt %s -split-input-file -loom-gpu-outline-kernels=tensor-cores=none | FileCheck %s --check-prefix=CUDA-CORES
// CUDA-CORES-LABEL: func.func @mma
// CUDA-CORES: gpu.launch_func @loom_kernels::@mma_0_matmul
// CUDA-CORES-NOT: nvgpu.mma.sync
// tensor-cores=bf16: the same tiles and steps of 32, products of depth 16:
// per 16 of k a lane reads 8 values of A (rows g, g + 8 at k = 2t, 2t + 1,
// then 2t + 8, 2t + 9) and 4 of B per tile, rounds each to bf16, and the
// warp's 2 x 4 tiles take one mma.sync m16n8k16 each.
// RUN: loom-opt %s -split-input-file -loom-gpu-outline-kernels=tensor-cores=bf16 -canonicalize -cse | FileCheck %s --check-prefix=BF16
// BF16-LABEL: func.func @mma
// BF16: gpu.func @mma_0_mma
// BF16: scf.for %{{.*}} = %c0 to %c40 step %c32
// BF16: scf.for %{{.*}} = %c0{{.*}} to %c32{{.*}} step %c16
// BF16-COUNT-8: arith.truncf %{{.*}} : f32 to bf16
// BF16-NEXT: vector.from_elements {{.*}} : vector<4x2xbf16>
// BF16: vector.from_elements {{.*}} : vector<4x2xbf16>
// BF16-COUNT-4: arith.truncf %{{.*}} : f32 to bf16
// BF16-NEXT: vector.from_elements {{.*}} : vector<2x2xbf16>
// BF16-COUNT-8: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
// BF16-NEXT: scf.yield
func.func @mma(%a: memref<70x40xf32>, %b: memref<40x40xf32>, %c: memref<70x40xf32>) {
  linalg.matmul ins(%a, %b : memref<70x40xf32>, memref<40x40xf32>) outs(%c : memref<70x40xf32>)
  return
}

// -----

// Tests that few long rows (3 of 5000) take a block of 256 threads each:
// thread l folds r = l, l + 256, ...; five shuffles make each warp's total,
// lane 0 of each warp stores it to shared memory (8 floats), a barrier,
// then every warp reads the 8 totals (lanes past them the neutral element)
// and three shuffles (4, 2, 1) combine them; thread 0 of a block inside
// the rows folds the total into the output. The shared buffer is not an
// argument the launch writes.
// CHECK-LABEL: func.func @long_rows
// CHECK: gpu.launch_func @loom_kernels::@long_rows_0_reduce blocks in (%c3, %{{.*}}, %{{.*}}) threads in (%c256, %{{.*}}, %{{.*}}) args({{.*}}) {loom.arg_offsets = array<i64: 0, 0>, loom.writes = array<i1: false, true>}
// CHECK: gpu.func @long_rows_0_reduce(%[[X:.*]]: memref<3x5000xf32>, %[[S:.*]]: memref<3xf32>) workgroup(%[[P:[^ ]*]] : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK: %[[ROW:.*]] = arith.divui %{{.*}}, %c256
// CHECK: %[[L:.*]] = arith.remui %{{.*}}, %c256
// CHECK: scf.for %{{.*}} = %[[L]] to %c5000 step %c256
// CHECK-COUNT-5: gpu.shuffle  xor
// CHECK: %[[W:.*]] = arith.divui %[[L]], %c32
// CHECK: %[[WL:.*]] = arith.remui %[[L]], %c32
// CHECK: %[[LEAD:.*]] = arith.cmpi eq, %[[WL]], %c0
// CHECK: scf.if %[[LEAD]]
// CHECK-NEXT: memref.store %{{.*}}, %[[P]][%[[W]]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[P]]
// CHECK: %[[SOME:.*]] = arith.cmpi ult, %[[WL]], %c8
// CHECK: arith.select %[[SOME]]
// CHECK: gpu.shuffle  xor %{{.*}}, %c4_i32, %c32_i32
// CHECK: gpu.shuffle  xor %{{.*}}, %c2_i32, %c32_i32
// CHECK: gpu.shuffle  xor %{{.*}}, %c1_i32, %c32_i32
// CHECK-NOT: gpu.shuffle
// CHECK: scf.if
// CHECK: memref.store %{{.*}}, %[[S]]
#long_rows = affine_map<(i, r) -> (i, r)>
#long_row = affine_map<(i, r) -> (i)>
func.func @long_rows(%x: memref<3x5000xf32>, %s: memref<3xf32>) {
  linalg.generic {indexing_maps = [#long_rows, #long_row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<3x5000xf32>) outs(%s : memref<3xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %r = arith.addf %acc, %v : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Tests that a loop whose innermost dim is a block's threads
// (`loom.block_threads`) is launched as 4 blocks of exactly 64 threads, no
// bounds check, its workgroup alloca a 16-byte aligned workgroup
// attribution, its barrier kept and its registers uncapped (nvvm.maxnreg): each block reverses its row through
// shared memory.
func.func @block(%a: memref<4x64xf32>, %b: memref<4x64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c63 = arith.constant 63 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%r, %t) = (%c0, %c0) to (%c4, %c64) step (%c1, %c1) {
    %s = memref.alloca() : memref<64xf32, #gpu.address_space<workgroup>>
    %x = memref.load %a[%r, %t] : memref<4x64xf32>
    memref.store %x, %s[%t] : memref<64xf32, #gpu.address_space<workgroup>>
    gpu.barrier
    %u = arith.subi %c63, %t : index
    %y = memref.load %s[%u] : memref<64xf32, #gpu.address_space<workgroup>>
    memref.store %y, %b[%r, %t] : memref<4x64xf32>
  } {loom.block_threads = 64 : i64}
  return
}
// CHECK-LABEL: func.func @block
// CHECK: gpu.launch_func @loom_kernels::@block_0_loop blocks in (%c4{{.*}}, %c1{{.*}}, %c1{{.*}}) threads in (%c64{{.*}}, %c1{{.*}}, %c1{{.*}})
// CHECK: gpu.func @block_0_loop(%{{.*}}: memref<4x64xf32>, %{{.*}}: memref<4x64xf32>) workgroup(%[[S:[^ ]*]] : memref<64xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel attributes {known_block_size = array<i32: 64, 1, 1>, nvvm.maxnreg = 255 : i32}
// CHECK-NOT: scf.if
// CHECK: memref.store %{{.*}}, %[[S]]
// CHECK-NEXT: gpu.barrier
// CHECK: memref.load %[[S]]

// -----

// Tests that a constant fill goes into the kernel of the contraction or row
// reduction that next writes the same buffer: no launch for it, and the
// kernel combines its result with the constant instead of loading the
// output (the tensor-core product's C = sums + 1, the 4 x 4 one's sums +
// 2, the max's m = max(total, 0)). Not folded: a fill whose buffer a copy
// reads first (the product after it loads C), a fill of another view of
// the product's buffer, and a fill of a buffer that the host loads.
// CHECK-LABEL: func.func @folded
// CHECK-NOT: _loop
// CHECK: gpu.launch_func @loom_kernels::@folded_0_mma
// CHECK-NOT: _loop
// CHECK: gpu.launch_func @loom_kernels::@folded_1_matmul
// CHECK-NOT: _loop
// CHECK: gpu.launch_func @loom_kernels::@folded_2_reduce
// CHECK: gpu.launch_func @loom_kernels::@folded_3_copy
// CHECK: gpu.launch_func @loom_kernels::@folded_4_loop
// CHECK: gpu.launch_func @loom_kernels::@folded_3_copy
// CHECK: gpu.launch_func @loom_kernels::@folded_5_matmul
// CHECK: gpu.launch_func @loom_kernels::@folded_6_loop
// CHECK: gpu.launch_func @loom_kernels::@folded_5_matmul
// CHECK: gpu.launch_func @loom_kernels::@folded_7_serial
// CHECK: gpu.launch_func @loom_kernels::@folded_4_loop
// CHECK: gpu.launch_func @loom_kernels::@folded_5_matmul
// CHECK-NOT: gpu.launch_func
// CHECK: gpu.func @folded_0_mma(%{{.*}}: memref<32x16xf32>, %{{.*}}: memref<16x16xf32>, %[[C:.*]]: memref<32x16xf32>)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK: scf.if
// CHECK-NOT: memref.load %[[C]]
// CHECK: %[[SUM:.*]] = arith.addf %{{.*}}, %[[ONE]]
// CHECK: memref.store %[[SUM]], %[[C]]
// CHECK: gpu.func @folded_1_matmul(%{{.*}}: memref<6x16xf32>, %{{.*}}: memref<16x10xf32>, %[[D:.*]]: memref<6x10xf32>)
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: scf.if
// CHECK-NOT: memref.load %[[D]]
// CHECK: %[[SUM2:.*]] = arith.addf %{{.*}}, %[[TWO]]
// CHECK: memref.store %[[SUM2]], %[[D]]
// CHECK: gpu.func @folded_2_reduce(%{{.*}}: memref<10x100xf32>, %[[M:.*]]: memref<10xf32>)
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: scf.if
// CHECK-NOT: memref.load %[[M]]
// CHECK: %[[NEW:.*]] = arith.maximumf %{{.*}}, %[[ZERO]]
// CHECK: memref.store %[[NEW]], %[[M]]
// CHECK: gpu.func @folded_5_matmul(%{{.*}}: memref<6x16xf32>, %{{.*}}: memref<16x10xf32>, %[[E:.*]]: memref<6x10xf32>)
// CHECK: scf.if
// CHECK: memref.load %[[E]]
#rows2 = affine_map<(i, r) -> (i, r)>
#row2 = affine_map<(i, r) -> (i)>
func.func @folded(%a: memref<32x16xf32>, %b: memref<16x16xf32>, %a2: memref<6x16xf32>, %b2: memref<16x10xf32>, %x: memref<10x100xf32>, %m: memref<10xf32>, %d: memref<6x10xf32>, %e: memref<6x10xf32>, %f: memref<12x10xf32>, %g: memref<6x10xf32>, %s: memref<f32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %c = memref.alloc() : memref<32x16xf32>
  %c2 = memref.alloc() : memref<6x10xf32>
  linalg.fill ins(%one : f32) outs(%c : memref<32x16xf32>)
  linalg.fill ins(%two : f32) outs(%c2 : memref<6x10xf32>)
  linalg.fill ins(%zero : f32) outs(%m : memref<10xf32>)
  linalg.matmul ins(%a, %b : memref<32x16xf32>, memref<16x16xf32>) outs(%c : memref<32x16xf32>)
  linalg.matmul ins(%a2, %b2 : memref<6x16xf32>, memref<16x10xf32>) outs(%c2 : memref<6x10xf32>)
  linalg.generic {indexing_maps = [#rows2, #row2], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<10x100xf32>) outs(%m : memref<10xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %r = arith.maximumf %acc, %v : f32
    linalg.yield %r : f32
  }
  memref.copy %c2, %d : memref<6x10xf32> to memref<6x10xf32>
  linalg.fill ins(%zero : f32) outs(%e : memref<6x10xf32>)
  memref.copy %e, %d : memref<6x10xf32> to memref<6x10xf32>
  linalg.matmul ins(%a2, %b2 : memref<6x16xf32>, memref<16x10xf32>) outs(%e : memref<6x10xf32>)
  %top = memref.subview %f[0, 0] [6, 10] [1, 1] : memref<12x10xf32> to memref<6x10xf32, strided<[10, 1]>>
  %bottom = memref.subview %f[6, 0] [6, 10] [1, 1] : memref<12x10xf32> to memref<6x10xf32, strided<[10, 1], offset: 60>>
  linalg.fill ins(%one : f32) outs(%top : memref<6x10xf32, strided<[10, 1]>>)
  linalg.matmul ins(%a2, %b2 : memref<6x16xf32>, memref<16x10xf32>) outs(%bottom : memref<6x10xf32, strided<[10, 1], offset: 60>>)
  %c0 = arith.constant 0 : index
  %scale = memref.load %g[%c0, %c0] : memref<6x10xf32>
  memref.store %scale, %s[] : memref<f32>
  linalg.fill ins(%zero : f32) outs(%g : memref<6x10xf32>)
  linalg.matmul ins(%a2, %b2 : memref<6x16xf32>, memref<16x10xf32>) outs(%g : memref<6x10xf32>)
  return
}
