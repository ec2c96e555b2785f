// RUN: loom-opt %s -loom-gpu-lower-bf16-mma | FileCheck %s

// Tests that a bf16 m16n8k16 product becomes nvvm.mma.sync on i32
// registers (each bf16 pair bitcast) with the PTX types spelled out, its
// struct result back in the vector<2x2xf32> the loop carries, and that a
// tf32 product is left to convert-nvgpu-to-nvvm.
// CHECK-LABEL: func.func @products
// CHECK-SAME: (%[[A:.*]]: vector<4x2xbf16>, %[[B:.*]]: vector<2x2xbf16>, %[[C:.*]]: vector<2x2xf32>, %[[X:.*]]: vector<4x1xf32>, %[[Y:.*]]: vector<2x1xf32>)
// CHECK: %[[A0:.*]] = vector.extract %[[A]][0] : vector<2xbf16> from vector<4x2xbf16>
// CHECK: %[[W0:.*]] = vector.bitcast %[[A0]] : vector<2xbf16> to vector<1xi32>
// CHECK: %[[R0:.*]] = vector.extract %[[W0]][0] : i32 from vector<1xi32>
// CHECK-COUNT-3: vector.bitcast %{{.*}} : vector<2xbf16> to vector<1xi32>
// CHECK: %[[B0:.*]] = vector.extract %[[B]][0] : vector<2xbf16> from vector<2x2xbf16>
// CHECK-COUNT-2: vector.bitcast %{{.*}} : vector<2xbf16> to vector<1xi32>
// CHECK: %[[C0:.*]] = vector.extract %[[C]][0, 0] : f32 from vector<2x2xf32>
// CHECK: %[[D:.*]] = nvvm.mma.sync A[%[[R0]], %{{.*}}, %{{.*}}, %{{.*}}] B[%{{.*}}, %{{.*}}] C[%[[C0]], %{{.*}}, %{{.*}}, %{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK-COUNT-4: llvm.extractvalue %[[D]]
// CHECK: %[[E:.*]] = vector.from_elements %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : vector<2x2xf32>
// CHECK: %[[T:.*]] = nvgpu.mma.sync(%[[X]], %[[Y]], %[[E]]) {mmaShape = [16, 8, 8], tf32Enabled}
// CHECK: return %[[T]]
func.func @products(%a: vector<4x2xbf16>, %b: vector<2x2xbf16>, %c: vector<2x2xf32>, %x: vector<4x1xf32>, %y: vector<2x1xf32>) -> vector<2x2xf32> {
  %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
  %e = nvgpu.mma.sync(%x, %y, %d) {mmaShape = [16, 8, 8], tf32Enabled} : (vector<4x1xf32>, vector<2x1xf32>, vector<2x2xf32>) -> vector<2x2xf32>
  return %e : vector<2x2xf32>
}
