// RUN: loom-opt %s -split-input-file -verify-diagnostics -loom-derive-decode="capacity=16" | FileCheck %s

// A one-layer decoder: positions come from `start`, the causal attention
// reads and extends its cache, the updated caches are extra results that
// name the argument they update; position-wise ops keep their shapes.
// CHECK-LABEL: func.func @logits_decode(
// CHECK-SAME: %[[TOK:[a-z0-9]+]]: tensor<2x1xi32> {loom.name = "tokens"}
// CHECK-SAME: %[[START:[a-z0-9]+]]: tensor<2xi32> {loom.name = "start"}
// CHECK-SAME: %[[KC:[a-z0-9]+]]: tensor<2x2x16x4xf32> {loom.name = "k_cache.0"}
// CHECK-SAME: %[[VC:[a-z0-9]+]]: tensor<2x2x16x4xf32> {loom.name = "v_cache.0"}
// CHECK-SAME: -> (tensor<2x1x8xf32>, tensor<2x2x16x4xf32> {loom.updates = 2 : i64}, tensor<2x2x16x4xf32> {loom.updates = 3 : i64})
// CHECK-NOT: loom.arange
// CHECK: %[[POS:.*]] = loom.decode_positions %[[START]], %[[TOK]] : tensor<2xi32>, tensor<2x1xi32>
// CHECK: loom.embedding %{{.*}}, %[[POS]] : tensor<16x8xf32>, tensor<2x1xi32>
// CHECK: %[[O:.*]], %[[K2:.*]], %[[V2:.*]] = loom.cached_attention %{{.*}}, %{{.*}}, %{{.*}}, %[[KC]], %[[VC]], %[[START]], scale = 5.000000e-01
// CHECK-NOT: loom.attention
// CHECK: return %{{.*}}, %[[K2]], %[[V2]]
loom.parameter @wte : tensor<8x8xf32> init = {kind = "zeros"}
loom.parameter @wpe : tensor<16x8xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<2x1xi32> {loom.name = "tokens"}) -> tensor<2x1x8xf32> {
  %wte = loom.get_parameter @wte : tensor<8x8xf32>
  %wpe = loom.get_parameter @wpe : tensor<16x8xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x8xf32>, tensor<2x1xi32>
  %r = loom.arange size = 1 : tensor<1xi32>
  %p = loom.embedding %wpe, %r : tensor<16x8xf32>, tensor<1xi32>
  %h = loom.add %e, %p : tensor<2x1x8xf32>, tensor<1x8xf32>
  %q = loom.split_heads %h, heads = 2 : tensor<2x1x8xf32>
  %a = loom.attention %q, %q, %q, causal = true, scale = 5.000000e-01 : tensor<2x2x1x4xf32>, tensor<2x2x1x4xf32>, tensor<2x2x1x4xf32>
  %m = loom.merge_heads %a : tensor<2x2x1x4xf32>
  %o = loom.add %h, %m : tensor<2x1x8xf32>, tensor<2x1x8xf32>
  return %o : tensor<2x1x8xf32>
}

// -----

// The first input must be the token ids.
func.func @logits(%x: tensor<1x2x1x4xf32>, %tokens: tensor<1x1xi32>) -> tensor<1x2x1x4xf32> {
  // expected-error @-1 {{the first input of 'logits' must be the token ids i32[B, T]}}
  return %x : tensor<1x2x1x4xf32>
}

// -----

// Cross-attention to a context input (keys and values from `memory`, a
// mask from it too) stays; the context input keeps its place after `start`.
// CHECK-LABEL: func.func @logits_decode(
// CHECK-SAME: %[[TOK:[a-z0-9]+]]: tensor<1x1xi32>, %[[START:[a-z0-9]+]]: tensor<1xi32> {loom.name = "start"}, %[[MEM:[a-z0-9]+]]: tensor<1x2x5x4xf32>, %[[MASK:[a-z0-9]+]]: tensor<1x5xi1>)
// CHECK-SAME: -> tensor<1x2x1x4xf32>
// CHECK: loom.attention %{{.*}}, %[[MEM]], %[[MEM]], mask %[[MASK]], causal = false
// CHECK-NOT: loom.cached_attention
loom.parameter @wte : tensor<8x8xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x1xi32>, %memory: tensor<1x2x5x4xf32>, %mask: tensor<1x5xi1>) -> tensor<1x2x1x4xf32> {
  %wte = loom.get_parameter @wte : tensor<8x8xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x8xf32>, tensor<1x1xi32>
  %q = loom.split_heads %e, heads = 2 : tensor<1x1x8xf32>
  %a = loom.attention %q, %memory, %memory, mask %mask, causal = false, scale = 5.000000e-01 : tensor<1x2x1x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x5xi1>
  return %a : tensor<1x2x1x4xf32>
}

// -----

loom.parameter @wte : tensor<8x8xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<1x2x3x4xf32> {
  %wte = loom.get_parameter @wte : tensor<8x8xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x8xf32>, tensor<1x3xi32>
  %q = loom.split_heads %e, heads = 2 : tensor<1x3x8xf32>
  // expected-error @+1 {{a non-causal attention over the new tokens (an encoder) has no incremental form}}
  %a = loom.attention %q, %q, %q, causal = false, scale = 5.000000e-01 : tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>
  return %a : tensor<1x2x3x4xf32>
}

// -----

// Positions that feed anything but an embedding or a sinusoidal encoding.
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<3xi32> {
  %r = loom.arange size = 3 : tensor<3xi32>
  // expected-error @+1 {{arange(T) feeds 'loom.add'; only position embeddings can be decoded incrementally}}
  %s = loom.add %r, %r : tensor<3xi32>, tensor<3xi32>
  return %s : tensor<3xi32>
}

// -----

// A position table shorter than the cache.
loom.parameter @wpe : tensor<8x4xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<3x4xf32> {
  %wpe = loom.get_parameter @wpe : tensor<8x4xf32>
  %r = loom.arange size = 3 : tensor<3xi32>
  // expected-error @+1 {{a cache of 16 positions reads past this position table of 8 rows; decode with a capacity of at most 8}}
  %p = loom.embedding %wpe, %r : tensor<8x4xf32>, tensor<3xi32>
  return %p : tensor<3x4xf32>
}

// -----

// A recurrence over the tokens carries its state: the function's initial
// state where a sequence starts (start = 0), the cached one elsewhere; the
// final state is the updated cache.
// CHECK-LABEL: func.func @logits_decode(
// CHECK-SAME: %[[START:[a-z0-9]+]]: tensor<2xi32> {loom.name = "start"}, %[[H0:[a-z0-9]+]]: tensor<2x4xf32>, %[[HS:[a-z0-9]+]]: tensor<2x4xf32> {loom.name = "lstm_h.0"}, %[[CS:[a-z0-9]+]]: tensor<2x4xf32> {loom.name = "lstm_c.0"})
// CHECK-SAME: -> (tensor<2x1x4xf32>, tensor<2x4xf32> {loom.updates = 3 : i64}, tensor<2x4xf32> {loom.updates = 4 : i64})
// CHECK: %[[COL:.*]] = loom.reshape %[[START]]
// CHECK: %[[FIRST:.*]] = loom.compare %[[COL]], %{{.*}}, predicate = "eq"
// CHECK: %[[H:.*]] = loom.where %[[FIRST]], %[[H0]], %[[HS]]
// CHECK: %[[C:.*]] = loom.where %[[FIRST]], %[[H0]], %[[CS]]
// CHECK: %[[OUT:.*]], %[[HN:.*]], %[[CN:.*]] = loom.lstm %{{.*}}, %[[H]], %[[C]]
// CHECK: return %[[OUT]], %[[HN]], %[[CN]]
loom.parameter @emb : tensor<8x3xf32> init = {kind = "zeros"}
loom.parameter @wih : tensor<3x16xf32> init = {kind = "zeros"}
loom.parameter @whh : tensor<4x16xf32> init = {kind = "zeros"}
loom.parameter @b : tensor<16xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<2x1xi32>, %h0: tensor<2x4xf32>) -> tensor<2x1x4xf32> {
  %emb = loom.get_parameter @emb : tensor<8x3xf32>
  %wih = loom.get_parameter @wih : tensor<3x16xf32>
  %whh = loom.get_parameter @whh : tensor<4x16xf32>
  %b = loom.get_parameter @b : tensor<16xf32>
  %x = loom.embedding %emb, %tokens : tensor<8x3xf32>, tensor<2x1xi32>
  %out, %h, %c = loom.lstm %x, %h0, %h0, %wih, %whh, %b : tensor<2x1x3xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x16xf32>, tensor<4x16xf32>, tensor<16xf32>
  return %out : tensor<2x1x4xf32>
}

// -----

// Work on the context alone (the cross-attention's key projection of the
// memory) moves to <fn>_decode_context, run once per context; the step
// reads its result as input `context.0`.
// CHECK-LABEL: func.func @logits_decode_context(
// CHECK-SAME: %[[M:[a-z0-9]+]]: tensor<1x2x5x4xf32>) -> tensor<1x2x5x4xf32>
// CHECK: %[[K:.*]] = loom.matmul %[[M]], %{{.*}} : tensor<1x2x5x4xf32>, tensor<4x4xf32>
// CHECK: return %[[K]]
// CHECK-LABEL: func.func @logits_decode(
// CHECK-SAME: %[[MEM:[a-z0-9]+]]: tensor<1x2x5x4xf32>, %[[CTX:[a-z0-9]+]]: tensor<1x2x5x4xf32> {loom.name = "context.0"})
// CHECK-NOT: loom.matmul
// CHECK: loom.attention %{{.*}}, %[[CTX]], %[[MEM]], causal = false
loom.parameter @wte : tensor<8x8xf32> init = {kind = "zeros"}
loom.parameter @wk : tensor<4x4xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x1xi32>, %memory: tensor<1x2x5x4xf32>) -> tensor<1x2x1x4xf32> {
  %wte = loom.get_parameter @wte : tensor<8x8xf32>
  %wk = loom.get_parameter @wk : tensor<4x4xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x8xf32>, tensor<1x1xi32>
  %q = loom.split_heads %e, heads = 2 : tensor<1x1x8xf32>
  %k = loom.matmul %memory, %wk : tensor<1x2x5x4xf32>, tensor<4x4xf32>
  %a = loom.attention %q, %k, %memory, causal = false, scale = 5.000000e-01 : tensor<1x2x1x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x4xf32>
  return %a : tensor<1x2x1x4xf32>
}

// -----

// Ops that combine positions have no decoding form: a reduction over T ...
loom.parameter @wte : tensor<8x4xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<1x1x4xf32> {
  %wte = loom.get_parameter @wte : tensor<8x4xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x4xf32>, tensor<1x3xi32>
  // expected-error @+1 {{'loom.reduce_sum' is not known to act on each position alone; the decode step would differ from the full forward}}
  %s = loom.reduce_sum %e, axes = [1], keepdim = true : tensor<1x3x4xf32>
  return %s : tensor<1x1x4xf32>
}

// -----

// ... attention written by hand (a product that contracts over T) ...
loom.parameter @wte : tensor<8x4xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<1x3x3xf32> {
  %wte = loom.get_parameter @wte : tensor<8x4xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x4xf32>, tensor<1x3xi32>
  %t = loom.transpose %e, perm = [0, 2, 1] : tensor<1x3x4xf32>
  // expected-error @+1 {{'loom.matmul' contracts over the tokens (attention written by hand?)}}
  %s = loom.matmul %e, %t : tensor<1x3x4xf32>, tensor<1x4x3xf32>
  return %s : tensor<1x3x3xf32>
}

// -----

// ... and a slice along T (a token shift).
loom.parameter @wte : tensor<8x4xf32> init = {kind = "zeros"}
func.func @logits(%tokens: tensor<1x3xi32>) -> tensor<1x2x4xf32> {
  %wte = loom.get_parameter @wte : tensor<8x4xf32>
  %e = loom.embedding %wte, %tokens : tensor<8x4xf32>, tensor<1x3xi32>
  // expected-error @+1 {{'loom.slice' slices along T}}
  %s = loom.slice %e, axis = 1, start = 1, end = 3 : tensor<1x3x4xf32>
  return %s : tensor<1x2x4xf32>
}
