// RUN: not loom-opt %s -loom-specialize="bind=B=zero" 2>&1 | FileCheck %s
// RUN: not loom-opt %s -loom-specialize="bind=B=2,B=3" 2>&1 | FileCheck %s --check-prefix=TWICE

// Tests that malformed and duplicate bindings are rejected with a message.
// CHECK: error: malformed binding 'B=zero': expected NAME=VALUE with VALUE > 0
// TWICE: error: dim 'B' is bound twice
func.func @f(%x: tensor<?xf32> {loom.dims = ["B"]}) -> tensor<?xf32> {
  return %x : tensor<?xf32>
}
