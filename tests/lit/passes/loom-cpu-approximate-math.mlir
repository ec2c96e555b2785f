// RUN: loom-opt %s -split-input-file -loom-cpu-approximate-math | FileCheck %s

// Tests that tanh and exp on f32 vectors become arithmetic on the same
// vectors (no math op is left for a per-lane libm call).
// CHECK-LABEL: func.func @vectors
// CHECK-NOT: math.tanh
// CHECK-NOT: math.exp
// CHECK: arith.mulf {{.*}} : vector<8xf32>
// CHECK: return
func.func @vectors(%x: vector<8xf32>) -> (vector<8xf32>, vector<8xf32>) {
  %t = math.tanh %x : vector<8xf32>
  %e = math.exp %x : vector<8xf32>
  return %t, %e : vector<8xf32>, vector<8xf32>
}

// -----

// Tests that scalars and f64 vectors keep their math ops (libm is exact
// enough and no slower there).
// CHECK-LABEL: func.func @kept
// CHECK: math.exp %{{.*}} : f32
// CHECK: math.tanh %{{.*}} : vector<4xf64>
func.func @kept(%x: f32, %y: vector<4xf64>) -> (f32, vector<4xf64>) {
  %e = math.exp %x : f32
  %t = math.tanh %y : vector<4xf64>
  return %e, %t : f32, vector<4xf64>
}

// -----

// Tests that the division of tanh's rational approximation (its
// denominator is at least 4.9e-3) may be a reciprocal estimate, and that a
// division the function had before keeps its exact form.
// CHECK-LABEL: func.func @reciprocal
// CHECK: arith.divf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: arith.divf %{{.*}}, %{{.*}} fastmath<ninf,arcp> : vector<16xf32>
// CHECK-NOT: arith.divf
// CHECK: return
func.func @reciprocal(%x: vector<16xf32>, %y: vector<16xf32>) -> vector<16xf32> {
  %q = arith.divf %x, %y : vector<16xf32>
  %t = math.tanh %q : vector<16xf32>
  return %t : vector<16xf32>
}
