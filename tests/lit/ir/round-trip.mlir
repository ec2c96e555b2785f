// RUN: loom-opt %s | loom-opt | FileCheck %s
// RUN: loom-opt %s --mlir-print-op-generic | loom-opt | FileCheck %s

// Tests that every op prints in its declarative form and parses back.
// CHECK-LABEL: func.func @ops
// CHECK-SAME: (%[[A:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<3xf32>, %[[W:.*]]: tensor<4x3x5xf32>)
func.func @ops(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %w: tensor<4x3x5xf32>)
    -> tensor<4x2x5xf32> {
  // CHECK: %[[C:.*]] = loom.constant dense<{{\[}}1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
  %c = loom.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  // CHECK: %[[ADD:.*]] = loom.add %[[A]], %[[B]] : tensor<2x3xf32>, tensor<3xf32>
  %0 = loom.add %a, %b : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[SUB:.*]] = loom.sub %[[ADD]], %[[C]] : tensor<2x3xf32>, tensor<3xf32>
  %1 = loom.sub %0, %c : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[MUL:.*]] = loom.mul %[[SUB]], %[[A]] : tensor<2x3xf32>, tensor<2x3xf32>
  %2 = loom.mul %1, %a : tensor<2x3xf32>, tensor<2x3xf32>
  // CHECK: %[[DIV:.*]] = loom.div %[[MUL]], %[[B]] : tensor<2x3xf32>, tensor<3xf32>
  %3 = loom.div %2, %b : tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[NEG:.*]] = loom.neg %[[DIV]] : tensor<2x3xf32>
  %4 = loom.neg %3 : tensor<2x3xf32>
  // CHECK: %[[EXP:.*]] = loom.exp %[[NEG]] : tensor<2x3xf32>
  %5 = loom.exp %4 : tensor<2x3xf32>
  // CHECK: %[[SM:.*]] = loom.softmax %[[EXP]], axis = 1 : tensor<2x3xf32>
  %6 = loom.softmax %5, axis = 1 : tensor<2x3xf32>
  // CHECK: %[[MM:.*]] = loom.matmul %[[SM]], %[[W]] : tensor<2x3xf32>, tensor<4x3x5xf32>
  %7 = loom.matmul %6, %w : tensor<2x3xf32>, tensor<4x3x5xf32>
  // CHECK: %[[T:.*]] = loom.transpose %[[MM]], perm = [0, 1, 2] : tensor<4x2x5xf32>
  %8 = loom.transpose %7, perm = [0, 1, 2] : tensor<4x2x5xf32>
  // CHECK: return %[[T]] : tensor<4x2x5xf32>
  return %8 : tensor<4x2x5xf32>
}

// Tests that dynamic dims survive the round trip and infer through ops.
// CHECK-LABEL: func.func @dynamic
func.func @dynamic(%x: tensor<?x?x8xf32>, %w: tensor<8x4xf32>) -> tensor<?x?x4xf32> {
  // CHECK: loom.matmul %{{.*}}, %{{.*}} : tensor<?x?x8xf32>, tensor<8x4xf32>
  %0 = loom.matmul %x, %w : tensor<?x?x8xf32>, tensor<8x4xf32>
  return %0 : tensor<?x?x4xf32>
}

// Tests the elementwise unary ops, including those with attributes.
// CHECK-LABEL: func.func @unary
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
func.func @unary(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // CHECK: %[[LOG:.*]] = loom.log %[[X]] : tensor<2x3xf32>
  %0 = loom.log %x : tensor<2x3xf32>
  // CHECK: %[[TANH:.*]] = loom.tanh %[[LOG]] : tensor<2x3xf32>
  %1 = loom.tanh %0 : tensor<2x3xf32>
  // CHECK: %[[SIG:.*]] = loom.sigmoid %[[TANH]] : tensor<2x3xf32>
  %2 = loom.sigmoid %1 : tensor<2x3xf32>
  // CHECK: %[[RELU:.*]] = loom.relu %[[SIG]] : tensor<2x3xf32>
  %3 = loom.relu %2 : tensor<2x3xf32>
  // CHECK: %[[SQRT:.*]] = loom.sqrt %[[RELU]] : tensor<2x3xf32>
  %4 = loom.sqrt %3 : tensor<2x3xf32>
  // CHECK: %[[RSQRT:.*]] = loom.rsqrt %[[SQRT]] : tensor<2x3xf32>
  %5 = loom.rsqrt %4 : tensor<2x3xf32>
  // CHECK: %[[GELU:.*]] = loom.gelu %[[RSQRT]], approximate = true : tensor<2x3xf32>
  %6 = loom.gelu %5, approximate = true : tensor<2x3xf32>
  // CHECK: %[[ERF:.*]] = loom.gelu %[[GELU]], approximate = false : tensor<2x3xf32>
  %7 = loom.gelu %6, approximate = false : tensor<2x3xf32>
  // CHECK: %[[POW:.*]] = loom.pow %[[ERF]], exponent = 2.000000e+00 : tensor<2x3xf32>
  %8 = loom.pow %7, exponent = 2.0 : tensor<2x3xf32>
  // CHECK: return %[[POW]] : tensor<2x3xf32>
  return %8 : tensor<2x3xf32>
}

// Tests compare, where and cast, with broadcasting and the inferred types.
// CHECK-LABEL: func.func @select
// CHECK-SAME: (%[[I:.*]]: tensor<2x3xi32>, %[[S:.*]]: tensor<i32>, %[[A:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<3xf32>)
func.func @select(%i: tensor<2x3xi32>, %s: tensor<i32>, %a: tensor<2x3xf32>,
                  %b: tensor<3xf32>) -> tensor<2x3xbf16> {
  // CHECK: %[[M:.*]] = loom.compare %[[I]], %[[S]], predicate = "ne" : tensor<2x3xi32>, tensor<i32>
  %m = loom.compare %i, %s, predicate = "ne" : tensor<2x3xi32>, tensor<i32>
  // CHECK: %[[W:.*]] = loom.where %[[M]], %[[A]], %[[B]] : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>
  %w = loom.where %m, %a, %b : tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>
  // CHECK: %[[C:.*]] = loom.cast %[[W]], to = bf16 : tensor<2x3xf32>
  %c = loom.cast %w, to = bf16 : tensor<2x3xf32>
  // CHECK: return %[[C]] : tensor<2x3xbf16>
  return %c : tensor<2x3xbf16>
}

// Tests the reductions, with and without kept dims.
// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<2x3x4xf32>, %i: tensor<2x3xi32>)
    -> (tensor<2xf32>, tensor<1x3x1xf32>, tensor<3xi32>) {
  // CHECK: loom.reduce_sum %{{.*}}, axes = [1, 2], keepdim = false : tensor<2x3x4xf32>
  %0 = loom.reduce_sum %x, axes = [1, 2], keepdim = false : tensor<2x3x4xf32>
  // CHECK: loom.reduce_mean %{{.*}}, axes = [0, 2], keepdim = true : tensor<2x3x4xf32>
  %1 = loom.reduce_mean %x, axes = [0, 2], keepdim = true : tensor<2x3x4xf32>
  // CHECK: loom.reduce_max %{{.*}}, axes = [0], keepdim = false : tensor<2x3xi32>
  %2 = loom.reduce_max %i, axes = [0], keepdim = false : tensor<2x3xi32>
  return %0, %1, %2 : tensor<2xf32>, tensor<1x3x1xf32>, tensor<3xi32>
}

// Tests the shape ops, with static and dynamic dims.
// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x16x64xf32>, %d: tensor<?x3xf32>)
    -> (tensor<32x64xf32>, tensor<?x3x1xf32>, tensor<2x16x64xf32>,
        tensor<2x16x128xf32>, tensor<2x14x64xf32>, tensor<4x3xf32>,
        tensor<?x3xf32>) {
  // CHECK: loom.reshape %{{.*}}, shape = [-1, 64] : tensor<2x16x64xf32>
  %0 = loom.reshape %x, shape = [-1, 64] : tensor<2x16x64xf32>
  // CHECK: loom.reshape %{{.*}}, shape = [-1, 3, 1] : tensor<?x3xf32>
  %1 = loom.reshape %d, shape = [-1, 3, 1] : tensor<?x3xf32>
  // CHECK: %[[H:.*]] = loom.split_heads %{{.*}}, heads = 4 : tensor<2x16x64xf32>
  %h = loom.split_heads %x, heads = 4 : tensor<2x16x64xf32>
  // CHECK: loom.merge_heads %[[H]] : tensor<2x4x16x16xf32>
  %2 = loom.merge_heads %h : tensor<2x4x16x16xf32>
  // CHECK: loom.concat %{{.*}}, %{{.*}}, axis = 2 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  %3 = loom.concat %x, %2, axis = 2 : tensor<2x16x64xf32>, tensor<2x16x64xf32>
  // CHECK: loom.slice %{{.*}}, axis = 1, start = 1, end = -1 : tensor<2x16x64xf32>
  %4 = loom.slice %x, axis = 1, start = 1, end = -1 : tensor<2x16x64xf32>
  // CHECK: loom.slice %{{.*}}, axis = 0, start = 2, end = 6 : tensor<?x3xf32>
  %5 = loom.slice %d, axis = 0, start = 2, end = 6 : tensor<?x3xf32>
  // CHECK: loom.concat %{{.*}}, axis = 0 : tensor<?x3xf32>
  %6 = loom.concat %d, axis = 0 : tensor<?x3xf32>
  return %0, %1, %2, %3, %4, %5, %6
      : tensor<32x64xf32>, tensor<?x3x1xf32>, tensor<2x16x64xf32>,
        tensor<2x16x128xf32>, tensor<2x14x64xf32>, tensor<4x3xf32>,
        tensor<?x3xf32>
}

// Tests embedding, sinusoidal, arange and layer_norm.
// CHECK-LABEL: func.func @inputs
func.func @inputs(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>,
                  %g: tensor<64xf32>, %b: tensor<64xf32>)
    -> (tensor<2x16x64xf32>, tensor<16x64xf32>) {
  // CHECK: %[[E:.*]] = loom.embedding %{{.*}}, %{{.*}} : tensor<256x64xf32>, tensor<2x16xi32>
  %e = loom.embedding %table, %ids : tensor<256x64xf32>, tensor<2x16xi32>
  // CHECK: %[[POS:.*]] = loom.arange size = 16 : tensor<16xi32>
  %pos = loom.arange size = 16 : tensor<16xi32>
  // CHECK: loom.arange size = -1 : tensor<?xi32>
  %dyn = loom.arange size = -1 : tensor<?xi32>
  // CHECK: %[[PE:.*]] = loom.sinusoidal %[[POS]], dim = 64 : tensor<16xi32>
  %pe = loom.sinusoidal %pos, dim = 64 : tensor<16xi32>
  // CHECK: loom.layer_norm %[[E]], %{{.*}}, %{{.*}}, eps = 1.000000e-05 : tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>
  %n = loom.layer_norm %e, %g, %b, eps = 1.0e-05
      : tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>
  return %n, %pe : tensor<2x16x64xf32>, tensor<16x64xf32>
}

// Tests attention (with and without a key mask), cross_entropy, dropout and
// lstm.
// CHECK-LABEL: func.func @model
func.func @model(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x?x8xf32>,
                 %v: tensor<2x4x?x16xf32>, %m: tensor<2x?xi1>,
                 %logits: tensor<2x16x256xf32>, %t: tensor<2x16xi32>,
                 %seed: tensor<i64>, %x: tensor<2x5x8xf32>,
                 %h0: tensor<2x32xf32>, %wih: tensor<8x128xf32>,
                 %whh: tensor<32x128xf32>, %bias: tensor<128xf32>)
    -> (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>, tensor<f32>,
        tensor<2x16x256xf32>, tensor<2x5x32xf32>, tensor<2x32xf32>) {
  // CHECK: loom.attention %{{.*}}, %{{.*}}, %{{.*}}, mask %{{.*}}, causal = true, scale = 1.250000e-01 : tensor<2x4x16x8xf32>, tensor<2x4x?x8xf32>, tensor<2x4x?x16xf32>, tensor<2x?xi1>
  %0 = loom.attention %q, %k, %v, mask %m, causal = true, scale = 0.125
      : tensor<2x4x16x8xf32>, tensor<2x4x?x8xf32>, tensor<2x4x?x16xf32>,
        tensor<2x?xi1>
  // CHECK: loom.attention %{{.*}}, %{{.*}}, %{{.*}}, causal = false, scale = 5.000000e-01 : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>
  %1 = loom.attention %q, %q, %q, causal = false, scale = 0.5
      : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>
  // CHECK: loom.cross_entropy %{{.*}}, %{{.*}}, ignore_index = -100 : tensor<2x16x256xf32>, tensor<2x16xi32>
  %2 = loom.cross_entropy %logits, %t, ignore_index = -100
      : tensor<2x16x256xf32>, tensor<2x16xi32>
  // CHECK: loom.dropout %{{.*}}, %{{.*}}, rate = 1.000000e-01, site = 3 : tensor<2x16x256xf32>
  %3 = loom.dropout %logits, %seed, rate = 0.1, site = 3 : tensor<2x16x256xf32>
  // CHECK: %{{.*}}, %{{.*}}, %{{.*}} = loom.lstm %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x5x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  %out, %h, %c = loom.lstm %x, %h0, %h0, %wih, %whh, %bias
      : tensor<2x5x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>,
        tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  return %0, %1, %2, %3, %out, %c
      : tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>, tensor<f32>,
        tensor<2x16x256xf32>, tensor<2x5x32xf32>, tensor<2x32xf32>
}

// Tests module parameters and reading them.
// CHECK: loom.parameter @blocks.0.attn.wq.weight : tensor<64x64xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
loom.parameter @"blocks.0.attn.wq.weight" : tensor<64x64xf32>
    init = {kind = "normal", std = 2.000000e-02 : f64}
// CHECK: loom.parameter @"wte weight" : tensor<256x64xf32> init = {gain = 1.000000e+00 : f64, kind = "xavier_uniform"}
loom.parameter @"wte weight" : tensor<256x64xf32>
    init = {kind = "xavier_uniform", gain = 1.0}
// CHECK: loom.parameter @bias : tensor<64xf32> init = {kind = "zeros"}
loom.parameter @bias : tensor<64xf32> init = {kind = "zeros"}
// CHECK-LABEL: func.func @parameters
func.func @parameters() -> (tensor<64x64xf32>, tensor<256x64xf32>) {
  // CHECK: loom.get_parameter @blocks.0.attn.wq.weight : tensor<64x64xf32>
  %0 = loom.get_parameter @"blocks.0.attn.wq.weight" : tensor<64x64xf32>
  // CHECK: loom.get_parameter @"wte weight" : tensor<256x64xf32>
  %1 = loom.get_parameter @"wte weight" : tensor<256x64xf32>
  return %0, %1 : tensor<64x64xf32>, tensor<256x64xf32>
}

// Tests fill, static and dynamic, of float and integer element types.
// CHECK-LABEL: func.func @fill
func.func @fill() -> (tensor<2x3xf32>, tensor<?x4xi32>) {
  // CHECK: loom.fill value = 1.500000e+00 : tensor<2x3xf32>
  %a = loom.fill value = 1.5 : tensor<2x3xf32>
  // CHECK: loom.fill value = 0.000000e+00 {loom.dims = ["B", ""]} : tensor<?x4xi32>
  %b = loom.fill value = 0.0 {loom.dims = ["B", ""]} : tensor<?x4xi32>
  return %a, %b : tensor<2x3xf32>, tensor<?x4xi32>
}
