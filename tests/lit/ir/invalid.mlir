// RUN: loom-opt %s -split-input-file -verify-diagnostics

// Tests that non-broadcastable shapes are rejected.
func.func @add_mismatch(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{shapes [2, 3] and [4] do not broadcast}}
  %0 = loom.add %a, %b : tensor<2x3xf32>, tensor<4xf32>
  return
}

// -----

// Tests that mixed element types are rejected.
func.func @mul_types(%a: tensor<3xf32>, %b: tensor<3xbf16>) {
  // expected-error @+1 {{operand element types differ: 'f32' vs 'bf16'}}
  %0 = loom.mul %a, %b : tensor<3xf32>, tensor<3xbf16>
  return
}

// -----

// Tests that matmul checks its contraction dims.
func.func @matmul_k(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+1 {{contraction dims differ: lhs [2, 3] has K = 3, rhs [4, 5] has K = 4}}
  %0 = loom.matmul %a, %b : tensor<2x3xf32>, tensor<4x5xf32>
  return
}

// -----

// Tests that matmul needs matrices.
func.func @matmul_rank(%a: tensor<3xf32>, %b: tensor<3x5xf32>) {
  // expected-error @+1 {{expected operands of rank >= 2, got ranks 1 and 2}}
  %0 = loom.matmul %a, %b : tensor<3xf32>, tensor<3x5xf32>
  return
}

// -----

// Tests that matmul batch dims must broadcast.
func.func @matmul_batch(%a: tensor<2x4x3xf32>, %b: tensor<5x3x6xf32>) {
  // expected-error @+1 {{batch dims [2] and [5] do not broadcast}}
  %0 = loom.matmul %a, %b : tensor<2x4x3xf32>, tensor<5x3x6xf32>
  return
}

// -----

// Tests that matmul rejects integer operands.
func.func @matmul_int(%a: tensor<2x3xi32>, %b: tensor<3x2xi32>) {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float or 64-bit float values}}
  %0 = loom.matmul %a, %b : tensor<2x3xi32>, tensor<3x2xi32>
  return
}

// -----

// Tests that transpose needs a permutation.
func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm [0, 0] is not a permutation of [0, 2)}}
  %0 = loom.transpose %a, perm = [0, 0] : tensor<2x3xf32>
  return
}

// -----

// Tests that transpose's perm has one entry per dim.
func.func @transpose_rank(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm has 3 entries but the input has rank 2}}
  %0 = loom.transpose %a, perm = [0, 1, 2] : tensor<2x3xf32>
  return
}

// -----

// Tests that softmax's axis lies within the rank.
func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{'loom.softmax' op axis 2 is out of range for rank 2}}
  %0 = loom.softmax %a, axis = 2 : tensor<2x3xf32>
  return
}

// -----

// Tests that a wrongly declared result type is caught by inference.
func.func @wrong_result(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<2x4xf32>' are incompatible with return type(s) of operation 'tensor<2x5xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = "loom.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x5xf32>
  return
}

// -----

// Tests that unranked operands get an error rather than a crash.
func.func @unranked(%a: tensor<*xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xf32>'}}
  %0 = loom.add %a, %b : tensor<*xf32>, tensor<3xf32>
  return
}

// -----

// Tests the same in generic form, where the operand constraint catches it.
func.func @unranked_generic(%a: tensor<*xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor}}
  %0 = "loom.add"(%a, %b) : (tensor<*xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

// Tests that a constant's attribute and result types agree.
func.func @constant_type() {
  // expected-error @+1 {{failed to verify that all of {value, result} have same type}}
  %0 = "loom.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  return
}

// -----

// Tests that compare names the allowed predicates.
func.func @compare_predicate(%a: tensor<3xf32>) {
  // expected-error @+1 {{'loom.compare' op unknown predicate "lte"; expected one of "eq", "ne", "lt", "le", "gt", "ge"}}
  %0 = loom.compare %a, %a, predicate = "lte" : tensor<3xf32>, tensor<3xf32>
  return
}

// -----

// Tests that compare broadcasts like the binary ops.
func.func @compare_shapes(%a: tensor<2x3xi32>, %b: tensor<2xi32>) {
  // expected-error @+1 {{shapes [2, 3] and [2] do not broadcast}}
  %0 = loom.compare %a, %b, predicate = "eq" : tensor<2x3xi32>, tensor<2xi32>
  return
}

// -----

// Tests that where's condition is i1.
func.func @where_cond(%c: tensor<3xf32>, %a: tensor<3xf32>) {
  // expected-error @+1 {{expected cond to have element type i1, got 'f32'}}
  %0 = loom.where %c, %a, %a : tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
  return
}

// -----

// Tests that where's branches share an element type.
func.func @where_types(%c: tensor<3xi1>, %a: tensor<3xf32>, %b: tensor<3xi32>) {
  // expected-error @+1 {{operand element types differ: 'f32' vs 'i32'}}
  %0 = loom.where %c, %a, %b : tensor<3xi1>, tensor<3xf32>, tensor<3xi32>
  return
}

// -----

// Tests that where's three shapes must broadcast.
func.func @where_shapes(%c: tensor<4xi1>, %a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{shapes [4], [2, 3] and [3] do not broadcast}}
  %0 = loom.where %c, %a, %b : tensor<4xi1>, tensor<2x3xf32>, tensor<3xf32>
  return
}

// -----

// Tests that cast only targets loom element types.
func.func @cast_type(%a: tensor<3xf32>) {
  // expected-error @+1 {{cannot cast to 'i64': expected one of f32, bf16, f16, f64, i32, i1}}
  %0 = loom.cast %a, to = i64 : tensor<3xf32>
  return
}

// -----

// Tests that a reduction needs an axis.
func.func @reduce_no_axes(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{expected at least one axis to reduce}}
  %0 = loom.reduce_sum %a, axes = [], keepdim = false : tensor<2x3xf32>
  return
}

// -----

// Tests that reduction axes lie within the rank.
func.func @reduce_axis_range(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = loom.reduce_max %a, axes = [2], keepdim = false : tensor<2x3xf32>
  return
}

// -----

// Tests that reduction axes are sorted and unique.
func.func @reduce_axis_order(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axes [1, 0] are not sorted and unique}}
  %0 = loom.reduce_sum %a, axes = [1, 0], keepdim = true : tensor<2x3xf32>
  return
}

// -----

// Tests that reduce_mean needs floats.
func.func @reduce_mean_int(%a: tensor<2x3xi32>) {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or bfloat16 type or 16-bit float or 64-bit float values}}
  %0 = loom.reduce_mean %a, axes = [0], keepdim = false : tensor<2x3xi32>
  return
}

// -----

// Tests that reshape entries are sizes or -1.
func.func @reshape_entry(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{shape [-2, 3] has entry -2; expected a size >= 0, or -1 for a dynamic dim}}
  %0 = loom.reshape %a, shape = [-2, 3] : tensor<2x3xf32>
  return
}

// -----

// Tests that an inferred -1 dim must divide the element count.
func.func @reshape_infer(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot infer the -1 dim of shape [-1, 4]: 6 elements of 'tensor<2x3xf32>' are not a multiple of 4}}
  %0 = loom.reshape %a, shape = [-1, 4] : tensor<2x3xf32>
  return
}

// -----

// Tests that a -1 dim cannot be inferred next to an empty dim.
func.func @reshape_zero(%a: tensor<0x3xf32>) {
  // expected-error @+1 {{cannot infer the -1 dim of shape [0, -1] next to a dim of size 0}}
  %0 = loom.reshape %a, shape = [0, -1] : tensor<0x3xf32>
  return
}

// -----

// Tests that a reshape's element count fits in 64 bits.
func.func @reshape_overflow(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{shape [4611686018427387904, 4] has more elements than fit in 64 bits}}
  %0 = loom.reshape %a, shape = [4611686018427387904, 4] : tensor<2x3xf32>
  return
}

// -----

// Tests that a static reshape keeps the element count.
func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot reshape 'tensor<2x3xf32>' (6 elements) to shape [4, 2] (8 elements)}}
  %0 = loom.reshape %a, shape = [4, 2] : tensor<2x3xf32>
  return
}

// -----

// Tests split_heads' rank.
func.func @split_heads_rank(%a: tensor<2x64xf32>) {
  // expected-error @+1 {{expected input of rank 3 [B, T, H*Dh], got 'tensor<2x64xf32>'}}
  %0 = loom.split_heads %a, heads = 4 : tensor<2x64xf32>
  return
}

// -----

// Tests that split_heads needs a positive head count.
func.func @split_heads_zero(%a: tensor<2x16x64xf32>) {
  // expected-error @+1 {{heads must be positive, got 0}}
  %0 = loom.split_heads %a, heads = 0 : tensor<2x16x64xf32>
  return
}

// -----

// Tests that split_heads divides the feature dim evenly.
func.func @split_heads_divide(%a: tensor<2x16x60xf32>) {
  // expected-error @+1 {{last dim 60 is not divisible by heads = 8}}
  %0 = loom.split_heads %a, heads = 8 : tensor<2x16x60xf32>
  return
}

// -----

// Tests merge_heads' rank.
func.func @merge_heads_rank(%a: tensor<2x16x64xf32>) {
  // expected-error @+1 {{expected input of rank 4 [B, H, T, Dh], got 'tensor<2x16x64xf32>'}}
  %0 = loom.merge_heads %a : tensor<2x16x64xf32>
  return
}

// -----

// Tests that concat needs an input (only the generic form can omit them).
func.func @concat_empty() {
  // expected-error @+2 {{expected at least one input}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = "loom.concat"() {axis = 0 : i64} : () -> tensor<0xf32>
  return
}

// -----

// Tests that concat's axis lies within the rank.
func.func @concat_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = loom.concat %a, %a, axis = 2 : tensor<2x3xf32>, tensor<2x3xf32>
  return
}

// -----

// Tests that concat inputs share a rank.
func.func @concat_rank(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{input #1 has rank 1 but input #0 has rank 2}}
  %0 = loom.concat %a, %b, axis = 0 : tensor<2x3xf32>, tensor<3xf32>
  return
}

// -----

// Tests that concat inputs share an element type.
func.func @concat_type(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) {
  // expected-error @+1 {{input #1 has element type 'f16' but input #0 has 'f32'}}
  %0 = loom.concat %a, %b, axis = 0 : tensor<2x3xf32>, tensor<2x3xf16>
  return
}

// -----

// Tests that concat inputs agree off the axis.
func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{input #1 has shape [2, 4], which differs from the others in dim 1 (4 vs 3)}}
  %0 = loom.concat %a, %b, axis = 0 : tensor<2x3xf32>, tensor<2x4xf32>
  return
}

// -----

// Tests that slice bounds are checked after normalization.
func.func @slice_range(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{slice [-3, 2) is [5, 2) on dim 1 of size 8; expected 0 <= start <= end <= 8}}
  %0 = loom.slice %a, axis = 1, start = -3, end = 2 : tensor<2x8xf32>
  return
}

// -----

// Tests that slice's end may not pass a static dim.
func.func @slice_end(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{slice [0, 9) is [0, 9) on dim 1 of size 8; expected 0 <= start <= end <= 8}}
  %0 = loom.slice %a, axis = 1, start = 0, end = 9 : tensor<2x8xf32>
  return
}

// -----

// Tests that slice's start may not follow its end on a dynamic dim.
func.func @slice_dynamic(%a: tensor<?x8xf32>) {
  // expected-error @+1 {{slice start 4 is after end 2}}
  %0 = loom.slice %a, axis = 0, start = 4, end = 2 : tensor<?x8xf32>
  return
}

// -----

// Tests embedding's table rank.
func.func @embedding_table(%t: tensor<256xf32>, %ids: tensor<4xi32>) {
  // expected-error @+1 {{expected table of rank 2 [V, D], got 'tensor<256xf32>'}}
  %0 = loom.embedding %t, %ids : tensor<256xf32>, tensor<4xi32>
  return
}

// -----

// Tests that embedding ids are i32.
func.func @embedding_ids(%t: tensor<256x8xf32>, %ids: tensor<4xf32>) {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer values}}
  %0 = loom.embedding %t, %ids : tensor<256x8xf32>, tensor<4xf32>
  return
}

// -----

// Tests that sinusoidal's dim is even.
func.func @sinusoidal_dim(%p: tensor<16xi32>) {
  // expected-error @+1 {{dim must be positive and even, got 7}}
  %0 = loom.sinusoidal %p, dim = 7 : tensor<16xi32>
  return
}

// -----

// Tests arange's size range.
func.func @arange_size() {
  // expected-error @+1 {{'loom.arange' op size must be >= 0, or -1 for a dynamic size, got -2}}
  %0 = loom.arange size = -2 : tensor<?xi32>
  return
}

// -----

// Tests that arange's result type matches its size.
func.func @arange_type() {
  // expected-error @+1 {{'loom.arange' op result type 'tensor<8xi32>' does not match size = 16; expected 'tensor<16xi32>'}}
  %0 = loom.arange size = 16 : tensor<8xi32>
  return
}

// -----

// Tests layer_norm's input rank.
func.func @layer_norm_rank(%x: tensor<f32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{expected input of rank >= 1, got 'tensor<f32>'}}
  %0 = loom.layer_norm %x, %g, %g, eps = 1.0e-05 : tensor<f32>, tensor<8xf32>, tensor<8xf32>
  return
}

// -----

// Tests that layer_norm's parameters are rank 1.
func.func @layer_norm_gamma_rank(%x: tensor<2x8xf32>, %g: tensor<1x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{expected gamma of rank 1 [8], got 'tensor<1x8xf32>'}}
  %0 = loom.layer_norm %x, %g, %b, eps = 1.0e-05 : tensor<2x8xf32>, tensor<1x8xf32>, tensor<8xf32>
  return
}

// -----

// Tests that layer_norm's parameters match the last dim.
func.func @layer_norm_size(%x: tensor<2x8xf32>, %g: tensor<8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{beta has 4 elements but the input's last dim is 8}}
  %0 = loom.layer_norm %x, %g, %b, eps = 1.0e-05 : tensor<2x8xf32>, tensor<8xf32>, tensor<4xf32>
  return
}

// -----

// Tests that layer_norm's operands share an element type.
func.func @layer_norm_type(%x: tensor<2x8xf32>, %g: tensor<8xbf16>) {
  // expected-error @+1 {{gamma element type 'bf16' differs from the input's 'f32'}}
  %0 = loom.layer_norm %x, %g, %g, eps = 1.0e-05 : tensor<2x8xf32>, tensor<8xbf16>, tensor<8xbf16>
  return
}

// -----

// Tests that layer_norm's eps is not negative.
func.func @layer_norm_eps(%x: tensor<2x8xf32>, %g: tensor<8xf32>) {
  // expected-error @+1 {{'loom.layer_norm' op eps must be >= 0, got -1.000000e+00}}
  %0 = loom.layer_norm %x, %g, %g, eps = -1.0 : tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>
  return
}

// -----

// Tests attention's ranks.
func.func @attention_rank(%q: tensor<16x8xf32>) {
  // expected-error @+1 {{expected q, k and v of one rank >= 3, got ranks 2, 2 and 2}}
  %0 = loom.attention %q, %q, %q, causal = false, scale = 1.0 : tensor<16x8xf32>, tensor<16x8xf32>, tensor<16x8xf32>
  return
}

// -----

// Tests that attention's operands share an element type.
func.func @attention_types(%q: tensor<2x16x8xf32>, %k: tensor<2x16x8xf16>) {
  // expected-error @+1 {{q, k and v element types differ: 'f32', 'f16' and 'f32'}}
  %0 = loom.attention %q, %k, %q, causal = false, scale = 1.0 : tensor<2x16x8xf32>, tensor<2x16x8xf16>, tensor<2x16x8xf32>
  return
}

// -----

// Tests that attention's batch dims agree.
func.func @attention_batch(%q: tensor<2x16x8xf32>, %k: tensor<3x16x8xf32>) {
  // expected-error @+1 {{inconsistent batch dim 0: dim 0 of k is 3 but dim 0 of q is 2}}
  %0 = loom.attention %q, %k, %k, causal = false, scale = 1.0 : tensor<2x16x8xf32>, tensor<3x16x8xf32>, tensor<3x16x8xf32>
  return
}

// -----

// Tests that q and k share the head dim.
func.func @attention_head_dim(%q: tensor<2x16x8xf32>, %k: tensor<2x16x4xf32>) {
  // expected-error @+1 {{inconsistent head dim D: dim 2 of k is 4 but dim 2 of q is 8}}
  %0 = loom.attention %q, %k, %k, causal = false, scale = 1.0 : tensor<2x16x8xf32>, tensor<2x16x4xf32>, tensor<2x16x4xf32>
  return
}

// -----

// Tests that k and v have one key count.
func.func @attention_keys(%q: tensor<2x16x8xf32>, %v: tensor<2x12x8xf32>) {
  // expected-error @+1 {{inconsistent key count Tk: dim 1 of v is 12 but dim 1 of k is 16}}
  %0 = loom.attention %q, %q, %v, causal = true, scale = 1.0 : tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x12x8xf32>
  return
}

// -----

// Tests that the key mask is [B, Tk].
func.func @attention_mask_rank(%q: tensor<2x16x8xf32>, %m: tensor<2x16x16xi1>) {
  // expected-error @+1 {{expected key_mask of rank 2 [B, Tk], got 'tensor<2x16x16xi1>'}}
  %0 = loom.attention %q, %q, %q, mask %m, causal = false, scale = 1.0 : tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x16xi1>
  return
}

// -----

// Tests that the key mask's batch matches q's.
func.func @attention_mask_batch(%q: tensor<2x4x16x8xf32>, %m: tensor<4x16xi1>) {
  // expected-error @+1 {{inconsistent batch dim 0: dim 0 of key_mask is 4 but dim 0 of q is 2}}
  %0 = loom.attention %q, %q, %q, mask %m, causal = false, scale = 1.0 : tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<4x16xi1>
  return
}

// -----

// Tests that the key mask is boolean.
func.func @attention_mask_type(%q: tensor<2x16x8xf32>, %m: tensor<2x16xf32>) {
  // expected-error @+1 {{expected key_mask to have element type i1, got 'f32'}}
  %0 = loom.attention %q, %q, %q, mask %m, causal = false, scale = 1.0 : tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16x8xf32>, tensor<2x16xf32>
  return
}

// -----

// Tests cross_entropy's logits rank.
func.func @cross_entropy_rank(%l: tensor<f32>, %t: tensor<i32>) {
  // expected-error @+1 {{expected logits of rank >= 1 [..., V], got 'tensor<f32>'}}
  %0 = loom.cross_entropy %l, %t, ignore_index = -100 : tensor<f32>, tensor<i32>
  return
}

// -----

// Tests that cross_entropy's targets drop the class dim of the logits.
func.func @cross_entropy_targets(%l: tensor<2x16x256xf32>, %t: tensor<2x15xi32>) {
  // expected-error @+1 {{expected targets of shape [2, 16] (the logits' shape without the last dim), got 'tensor<2x15xi32>'}}
  %0 = loom.cross_entropy %l, %t, ignore_index = -100 : tensor<2x16x256xf32>, tensor<2x15xi32>
  return
}

// -----

// Tests dropout's rate range.
func.func @dropout_rate(%x: tensor<4xf32>, %seed: tensor<i64>) {
  // expected-error @+1 {{'loom.dropout' op rate must be in [0, 1), got 1.000000e+00}}
  %0 = loom.dropout %x, %seed, rate = 1.0, site = 0 : tensor<4xf32>
  return
}

// -----

// Tests that dropout sites are not negative.
func.func @dropout_site(%x: tensor<4xf32>, %seed: tensor<i64>) {
  // expected-error @+1 {{'loom.dropout' op site must be >= 0, got -1}}
  %0 = loom.dropout %x, %seed, rate = 0.5, site = -1 : tensor<4xf32>
  return
}

// -----

// Tests lstm's operand ranks.
func.func @lstm_rank(%x: tensor<2x5x8xf32>, %h: tensor<32xf32>, %c: tensor<2x32xf32>,
                     %wih: tensor<8x128xf32>, %whh: tensor<32x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{expected h0 of rank 2 [B, H], got 'tensor<32xf32>'}}
  %0:3 = loom.lstm %x, %h, %c, %wih, %whh, %b : tensor<2x5x8xf32>, tensor<32xf32>, tensor<2x32xf32>, tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  return
}

// -----

// Tests that lstm operands share an element type.
func.func @lstm_types(%x: tensor<2x5x8xf32>, %h: tensor<2x32xf32>,
                      %wih: tensor<8x128xbf16>, %whh: tensor<32x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{w_ih element type 'bf16' differs from the input's 'f32'}}
  %0:3 = loom.lstm %x, %h, %h, %wih, %whh, %b : tensor<2x5x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x128xbf16>, tensor<32x128xf32>, tensor<128xf32>
  return
}

// -----

// Tests that lstm's hidden sizes agree.
func.func @lstm_hidden(%x: tensor<2x5x8xf32>, %h: tensor<2x32xf32>, %c: tensor<2x16xf32>,
                       %wih: tensor<8x128xf32>, %whh: tensor<32x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{inconsistent hidden size H: dim 1 of c0 is 16 but dim 1 of h0 is 32}}
  %0:3 = loom.lstm %x, %h, %c, %wih, %whh, %b : tensor<2x5x8xf32>, tensor<2x32xf32>, tensor<2x16xf32>, tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  return
}

// -----

// Tests that the gate size is four times the hidden size.
func.func @lstm_gates(%x: tensor<2x5x8xf32>, %h: tensor<2x32xf32>,
                      %wih: tensor<8x64xf32>, %whh: tensor<32x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{inconsistent hidden size H: a quarter of dim 1 of w_ih is 16 but dim 1 of h0 is 32}}
  %0:3 = loom.lstm %x, %h, %h, %wih, %whh, %b : tensor<2x5x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x64xf32>, tensor<32x64xf32>, tensor<64xf32>
  return
}

// -----

// Tests that the gate size divides by four.
func.func @lstm_gates_divide(%x: tensor<2x5x8xf32>, %h: tensor<2x?xf32>,
                             %wih: tensor<8x30xf32>, %whh: tensor<?x30xf32>, %b: tensor<30xf32>) {
  // expected-error @+1 {{gate size 4H = 30 (dim 1 of w_ih) is not divisible by 4}}
  %0:3 = loom.lstm %x, %h, %h, %wih, %whh, %b : tensor<2x5x8xf32>, tensor<2x?xf32>, tensor<2x?xf32>, tensor<8x30xf32>, tensor<?x30xf32>, tensor<30xf32>
  return
}

// -----

// Tests that lstm's batch sizes agree.
func.func @lstm_batch(%x: tensor<3x5x8xf32>, %h: tensor<2x32xf32>,
                      %wih: tensor<8x128xf32>, %whh: tensor<32x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{inconsistent batch size B: dim 0 of h0 is 2 but dim 0 of input is 3}}
  %0:3 = loom.lstm %x, %h, %h, %wih, %whh, %b : tensor<3x5x8xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  return
}

// -----

// Tests that lstm's input size matches w_ih.
func.func @lstm_input(%x: tensor<2x5x4xf32>, %h: tensor<2x32xf32>,
                      %wih: tensor<8x128xf32>, %whh: tensor<32x128xf32>, %b: tensor<128xf32>) {
  // expected-error @+1 {{inconsistent input size I: dim 0 of w_ih is 8 but dim 2 of input is 4}}
  %0:3 = loom.lstm %x, %h, %h, %wih, %whh, %b : tensor<2x5x4xf32>, tensor<2x32xf32>, tensor<2x32xf32>, tensor<8x128xf32>, tensor<32x128xf32>, tensor<128xf32>
  return
}

// -----

// Tests that a parameter has a static float tensor type.
// expected-error @+1 {{'loom.parameter' op type must be a statically shaped tensor of f32, bf16, f16 or f64, got 'tensor<?x4xf32>'}}
loom.parameter @w : tensor<?x4xf32> init = {kind = "zeros"}

// -----

// Tests that a parameter's init names its kind.
// expected-error @+1 {{'loom.parameter' op init needs a string field 'kind'}}
loom.parameter @w : tensor<4xf32> init = {std = 1.0}

// -----

// Tests that unknown init kinds are listed.
// expected-error @+1 {{'loom.parameter' op unknown init kind 'glorot'; expected one of zeros, ones, constant, normal, uniform, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal}}
loom.parameter @w : tensor<4xf32> init = {kind = "glorot"}

// -----

// Tests that a missing required field is named.
// expected-error @+1 {{'loom.parameter' op init kind 'normal' needs field 'std'}}
loom.parameter @w : tensor<4xf32> init = {kind = "normal", mean = 0.0}

// -----

// Tests that an unknown field is named.
// expected-error @+1 {{'loom.parameter' op init kind 'constant' has unknown field 'std'}}
loom.parameter @w : tensor<4xf32> init = {kind = "constant", value = 1.0, std = 1.0}

// -----

// Tests that init fields are f64.
// expected-error @+1 {{'loom.parameter' op init field 'value' must be an f64 attribute, got 1 : i64}}
loom.parameter @w : tensor<4xf32> init = {kind = "constant", value = 1}

// -----

// Tests that std is not negative.
// expected-error @+1 {{'loom.parameter' op init field 'std' must be >= 0, got -1.000000e+00}}
loom.parameter @w : tensor<4xf32> init = {kind = "normal", std = -1.0}

// -----

// Tests that uniform bounds are ordered.
// expected-error @+1 {{'loom.parameter' op init field 'low' (1.000000e+00) must be <= 'high' (0.000000e+00)}}
loom.parameter @w : tensor<4xf32> init = {kind = "uniform", low = 1.0, high = 0.0}

// -----

// Tests that fan-based inits need a matrix.
// expected-error @+1 {{'loom.parameter' op init kind 'kaiming_normal' needs a tensor of rank >= 2 to compute fan_in and fan_out, got 'tensor<4xf32>'}}
loom.parameter @w : tensor<4xf32> init = {kind = "kaiming_normal"}

// -----

// Tests that parameters live at module level.
func.func @nested() {
  // expected-error @+1 {{'loom.parameter' op expects parent op 'builtin.module'}}
  loom.parameter @w : tensor<4xf32> init = {kind = "zeros"}
  return
}

// -----

// Tests that get_parameter needs a parameter by that name.
func.func @unknown_parameter() {
  // expected-error @+1 {{'loom.get_parameter' op unknown parameter @missing}}
  %0 = loom.get_parameter @missing : tensor<4xf32>
  return
}

// -----

// Tests that get_parameter refers to a parameter, not another symbol.
func.func @not_a_parameter() {
  // expected-error @+1 {{'loom.get_parameter' op @not_a_parameter is a 'func.func', not a loom.parameter}}
  %0 = loom.get_parameter @not_a_parameter : tensor<4xf32>
  return
}

// -----

// Tests that get_parameter has the parameter's type.
loom.parameter @w : tensor<4xf32> init = {kind = "ones"}
func.func @parameter_type() {
  // expected-error @+1 {{'loom.get_parameter' op result type 'tensor<8xf32>' differs from the type 'tensor<4xf32>' of parameter @w}}
  %0 = loom.get_parameter @w : tensor<8xf32>
  return
}
