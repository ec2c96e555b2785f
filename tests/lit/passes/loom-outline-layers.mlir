// RUN: loom-opt %s -split-input-file -loom-outline-layers | FileCheck %s

// Tests that two layers that differ only in where their weight sits in the
// parameter buffer become one private no_inline function taking the buffer,
// the layer's input and the weight's offset, called once per layer (layer 1
// with layer 0's result, at offset 16).
// CHECK-LABEL: func.func private @f_blocks_forward
// CHECK-SAME: (%[[P:.*]]: tensor<40xf32>, %[[X:.*]]: tensor<2x4xf32>, %[[OFF:.*]]: index) -> tensor<2x4xf32>
// CHECK-SAME: attributes {no_inline}
// CHECK-NEXT: %[[S:.*]] = tensor.extract_slice %[[P]][%[[OFF]]] [16] [1]
// CHECK-NEXT: %[[W:.*]] = tensor.expand_shape %[[S]]
// CHECK-NEXT: %[[H:.*]] = loom.matmul %[[X]], %[[W]]
// CHECK-NEXT: %[[Y:.*]] = loom.gelu %[[H]]
// CHECK-NEXT: return %[[Y]]
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[FP:.*]]: tensor<40xf32>, %[[FX:.*]]: tensor<2x4xf32>
// CHECK-NOT: loom.matmul
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[Y0:.*]] = call @f_blocks_forward(%[[FP]], %[[FX]], %[[C0]])
// CHECK: %[[C16:.*]] = arith.constant 16 : index
// CHECK-NEXT: %[[Y1:.*]] = call @f_blocks_forward(%[[FP]], %[[Y0]], %[[C16]])
// CHECK-NEXT: return %[[Y1]]
func.func @f(%p: tensor<40xf32>, %x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s0 = tensor.extract_slice %p[0] [16] [1] : tensor<40xf32> to tensor<16xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %w0 = tensor.expand_shape %s0 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %h0 = loom.matmul %x, %w0 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  %y0 = loom.gelu %h0, approximate = true : tensor<2x4xf32> loc("blocks[0]"("nn.loom":9:5))
  %s1 = tensor.extract_slice %p[16] [16] [1] : tensor<40xf32> to tensor<16xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %w1 = tensor.expand_shape %s1 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %h1 = loom.matmul %y0, %w1 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %y1 = loom.gelu %h1, approximate = true : tensor<2x4xf32> loc("blocks[1]"("nn.loom":9:5))
  return %y1 : tensor<2x4xf32>
}

// -----

// Tests that a layer's ops split into a forward and a backward phase (the
// backward reads %g, which depends on the layer's forward through ops outside
// it), each outlined once; that the forward returns what the backward and
// the next layer read; and that the weight transpose the backward reads is
// recomputed in the backward rather than returned by the forward.
// CHECK-LABEL: func.func private @g_blocks_forward
// CHECK-SAME: -> tensor<2x4xf32> attributes {no_inline}
// CHECK-NOT: loom.transpose
// CHECK: return
// CHECK-LABEL: func.func private @g_blocks_backward
// CHECK-SAME: (%[[D:.*]]: tensor<2x4xf32>, %[[Y:.*]]: tensor<2x4xf32>, %[[P:.*]]: tensor<32xf32>, %[[OFF:.*]]: index) -> tensor<2x4xf32>
// CHECK: %[[E:.*]] = loom.mul %[[D]], %[[Y]]
// CHECK: tensor.extract_slice %[[P]][%[[OFF]]]
// CHECK: %[[WT:.*]] = loom.transpose
// CHECK: %[[F:.*]] = loom.matmul %[[E]], %[[WT]]
// CHECK: return %[[F]]
// CHECK-LABEL: func.func @g(
// CHECK: %[[Y0:.*]] = call @g_blocks_forward
// CHECK: %[[Y1:.*]] = call @g_blocks_forward({{.*}}%[[Y0]]
// CHECK: %[[G:.*]] = loom.mul %[[Y1]], %[[Y1]]
// CHECK: %[[F1:.*]] = call @g_blocks_backward(%[[G]], %[[Y1]],
// CHECK: %[[F0:.*]] = call @g_blocks_backward(%[[F1]], %[[Y0]],
// CHECK: return %[[F0]]
func.func @g(%p: tensor<32xf32>, %x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s0 = tensor.extract_slice %p[0] [16] [1] : tensor<32xf32> to tensor<16xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %w0 = tensor.expand_shape %s0 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %h0 = loom.matmul %x, %w0 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  %y0 = loom.gelu %h0, approximate = true : tensor<2x4xf32> loc("blocks[0]"("nn.loom":9:5))
  %t0 = loom.transpose %w0, perm = [1, 0] : tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  %s1 = tensor.extract_slice %p[16] [16] [1] : tensor<32xf32> to tensor<16xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %w1 = tensor.expand_shape %s1 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %h1 = loom.matmul %y0, %w1 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %y1 = loom.gelu %h1, approximate = true : tensor<2x4xf32> loc("blocks[1]"("nn.loom":9:5))
  %t1 = loom.transpose %w1, perm = [1, 0] : tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %g = loom.mul %y1, %y1 : tensor<2x4xf32>, tensor<2x4xf32> loc("head"("nn.loom":20:5))
  %e1 = loom.mul %g, %y1 : tensor<2x4xf32>, tensor<2x4xf32> loc("blocks[1]"("nn.loom":9:5))
  %f1 = loom.matmul %e1, %t1 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %e0 = loom.mul %f1, %y0 : tensor<2x4xf32>, tensor<2x4xf32> loc("blocks[0]"("nn.loom":9:5))
  %f0 = loom.matmul %e0, %t0 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  return %f0 : tensor<2x4xf32>
}

// -----

// Tests that layers which differ in an attribute (the GELU's approximation)
// are not outlined: each is a class of one and stays inline.
// CHECK-LABEL: func.func @h(
// CHECK-NOT: call
// CHECK: loom.gelu %{{.*}}, approximate = true
// CHECK: loom.gelu %{{.*}}, approximate = false
// CHECK-NOT: func.func private
func.func @h(%p: tensor<32xf32>, %x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s0 = tensor.extract_slice %p[0] [16] [1] : tensor<32xf32> to tensor<16xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %w0 = tensor.expand_shape %s0 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %h0 = loom.matmul %x, %w0 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  %y0 = loom.gelu %h0, approximate = true : tensor<2x4xf32> loc("blocks[0]"("nn.loom":9:5))
  %s1 = tensor.extract_slice %p[16] [16] [1] : tensor<32xf32> to tensor<16xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %w1 = tensor.expand_shape %s1 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %h1 = loom.matmul %y0, %w1 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %y1 = loom.gelu %h1, approximate = false : tensor<2x4xf32> loc("blocks[1]"("nn.loom":9:5))
  return %y1 : tensor<2x4xf32>
}

// -----

// Tests that with two classes of isomorphic layers (alternating GELU forms)
// only one is outlined: the other class was matched against values that
// outlining the first replaces, so its layers stay inline (and the IR stays
// valid).
// CHECK-LABEL: func.func private @a_blocks_forward
// CHECK-COUNT-1: loom.gelu
// CHECK-LABEL: func.func @a(
// CHECK-COUNT-2: call @a_blocks_forward
// CHECK-NOT: func.func private
func.func @a(%p: tensor<64xf32>, %x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %s0 = tensor.extract_slice %p[0] [16] [1] : tensor<64xf32> to tensor<16xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %w0 = tensor.expand_shape %s0 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":3:5))
  %h0 = loom.matmul %x, %w0 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[0].fc"("nn.loom":4:5))
  %y0 = loom.gelu %h0, approximate = true : tensor<2x4xf32> loc("blocks[0]"("nn.loom":9:5))
  %s1 = tensor.extract_slice %p[16] [16] [1] : tensor<64xf32> to tensor<16xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %w1 = tensor.expand_shape %s1 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":3:5))
  %h1 = loom.matmul %y0, %w1 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[1].fc"("nn.loom":4:5))
  %y1 = loom.gelu %h1, approximate = false : tensor<2x4xf32> loc("blocks[1]"("nn.loom":9:5))
  %s2 = tensor.extract_slice %p[32] [16] [1] : tensor<64xf32> to tensor<16xf32> loc("blocks[2].fc"("nn.loom":3:5))
  %w2 = tensor.expand_shape %s2 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[2].fc"("nn.loom":3:5))
  %h2 = loom.matmul %y1, %w2 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[2].fc"("nn.loom":4:5))
  %y2 = loom.gelu %h2, approximate = true : tensor<2x4xf32> loc("blocks[2]"("nn.loom":9:5))
  %s3 = tensor.extract_slice %p[48] [16] [1] : tensor<64xf32> to tensor<16xf32> loc("blocks[3].fc"("nn.loom":3:5))
  %w3 = tensor.expand_shape %s3 [[0, 1]] output_shape [4, 4] : tensor<16xf32> into tensor<4x4xf32> loc("blocks[3].fc"("nn.loom":3:5))
  %h3 = loom.matmul %y2, %w3 : tensor<2x4xf32>, tensor<4x4xf32> loc("blocks[3].fc"("nn.loom":4:5))
  %y3 = loom.gelu %h3, approximate = false : tensor<2x4xf32> loc("blocks[3]"("nn.loom":9:5))
  return %y3 : tensor<2x4xf32>
}
