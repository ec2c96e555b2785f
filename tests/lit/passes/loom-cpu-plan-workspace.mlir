// RUN: loom-opt %s -split-input-file -loom-cpu-plan-workspace | FileCheck %s

// Tests that two allocations whose lifetimes do not overlap share offset 0 of
// one private, uninitialized, 64-byte-aligned workspace global sized for the
// larger one, that the function records the size, and that the deallocs of
// the planned allocations are removed.
// CHECK-LABEL: memref.global "private" @__loom_workspace_disjoint : memref<256xi8> = uninitialized {alignment = 64 : i64}
// CHECK-LABEL: func.func @disjoint
// CHECK-SAME: (%[[OUT:.*]]: memref<64xf32>) attributes {loom.workspace_bytes = 256 : i64}
// CHECK-NEXT: %[[WS:.*]] = memref.get_global @__loom_workspace_disjoint : memref<256xi8>
// CHECK-NOT: memref.alloc
// CHECK: %[[OA:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.view %[[WS]][%[[OA]]][] : memref<256xi8> to memref<64xf32>
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[A]] : memref<64xf32>)
// CHECK-NEXT: memref.copy %[[A]], %[[OUT]]
// CHECK-NEXT: %[[OB:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[B:.*]] = memref.view %[[WS]][%[[OB]]][] : memref<256xi8> to memref<32xf32>
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[B]] : memref<32xf32>)
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func @disjoint(%out: memref<64xf32>) {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<64xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<64xf32>)
  memref.copy %a, %out : memref<64xf32> to memref<64xf32>
  memref.dealloc %a : memref<64xf32>
  %b = memref.alloc() : memref<32xf32>
  linalg.fill ins(%cst : f32) outs(%b : memref<32xf32>)
  %sv = memref.subview %out[0] [32] [1]
      : memref<64xf32> to memref<32xf32, strided<[1]>>
  memref.copy %b, %sv : memref<32xf32> to memref<32xf32, strided<[1]>>
  memref.dealloc %b : memref<32xf32>
  return
}

// -----

// Tests that allocations live at the same time get disjoint byte ranges (each
// rounded up to 64 bytes: 256 for 64xf32, 64 for 16xf32), and that a later
// allocation reuses the range of one that has died first fit (the 8xf32 one
// takes offset 0 once %a is dead, while %b is still live at 256).
// CHECK-LABEL: memref.global "private" @__loom_workspace_overlap : memref<320xi8>
// CHECK-LABEL: func.func @overlap
// CHECK-SAME: attributes {loom.workspace_bytes = 320 : i64}
// CHECK-NEXT: %[[WS:.*]] = memref.get_global @__loom_workspace_overlap : memref<320xi8>
// CHECK: %[[OA:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.view %[[WS]][%[[OA]]][] : memref<320xi8> to memref<64xf32>
// CHECK-NEXT: %[[OB:.*]] = arith.constant 256 : index
// CHECK-NEXT: %[[B:.*]] = memref.view %[[WS]][%[[OB]]][] : memref<320xi8> to memref<16xf32>
// CHECK: %[[OC:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[C:.*]] = memref.view %[[WS]][%[[OC]]][] : memref<320xi8> to memref<8xf32>
// CHECK: memref.copy %[[B]]
// CHECK: memref.copy %[[C]]
// CHECK-NOT: memref.alloc
func.func @overlap(%out: memref<64xf32>) {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<64xf32>
  %b = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<64xf32>)
  linalg.fill ins(%cst : f32) outs(%b : memref<16xf32>)
  memref.copy %a, %out : memref<64xf32> to memref<64xf32>
  %c = memref.alloc() : memref<8xf32>
  linalg.fill ins(%cst : f32) outs(%c : memref<8xf32>)
  %sv = memref.subview %out[0] [16] [1]
      : memref<64xf32> to memref<16xf32, strided<[1]>>
  memref.copy %b, %sv : memref<16xf32> to memref<16xf32, strided<[1]>>
  %sv2 = memref.subview %out[16] [8] [1]
      : memref<64xf32> to memref<8xf32, strided<[1], offset: 16>>
  memref.copy %c, %sv2 : memref<8xf32> to memref<8xf32, strided<[1], offset: 16>>
  return
}

// -----

// Tests that a use through a view (here an expand_shape) keeps the viewed
// allocation alive, so a later allocation does not share its bytes.
// CHECK-LABEL: func.func @through_view
// CHECK-SAME: attributes {loom.workspace_bytes = 128 : i64}
// CHECK: %[[OA:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.view %{{.*}}[%[[OA]]][] : memref<128xi8> to memref<16xf32>
// CHECK: %[[V:.*]] = memref.expand_shape %[[A]]
// CHECK-NEXT: %[[OB:.*]] = arith.constant 64 : index
// CHECK-NEXT: %[[B:.*]] = memref.view %{{.*}}[%[[OB]]][] : memref<128xi8> to memref<2x8xf32>
// CHECK: memref.copy %[[V]]
// CHECK: memref.copy %[[B]]
func.func @through_view(%out: memref<2x8xf32>) {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<16xf32>)
  %v = memref.expand_shape %a [[0, 1]] output_shape [2, 8]
      : memref<16xf32> into memref<2x8xf32>
  %b = memref.alloc() : memref<2x8xf32>
  linalg.fill ins(%cst : f32) outs(%b : memref<2x8xf32>)
  memref.copy %v, %out : memref<2x8xf32> to memref<2x8xf32>
  memref.copy %b, %out : memref<2x8xf32> to memref<2x8xf32>
  return
}

// -----

// Tests that an allocation inside a loop lives over the whole loop: it does
// not share bytes with a buffer used in the loop, and one allocated after the
// loop may reuse either.
// CHECK-LABEL: func.func @in_loop
// CHECK-SAME: attributes {loom.workspace_bytes = 128 : i64}
// CHECK-NEXT: %[[WS:.*]] = memref.get_global @__loom_workspace_in_loop : memref<128xi8>
// CHECK: %[[OA:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[A:.*]] = memref.view %[[WS]][%[[OA]]][] : memref<128xi8> to memref<16xf32>
// CHECK: scf.for
// CHECK-NEXT: %[[OT:.*]] = arith.constant 64 : index
// CHECK-NEXT: %[[T:.*]] = memref.view %[[WS]][%[[OT]]][] : memref<128xi8> to memref<16xf32>
// CHECK: memref.copy %[[A]], %[[T]]
// CHECK: }
// CHECK-NEXT: %[[OB:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[B:.*]] = memref.view %[[WS]][%[[OB]]][] : memref<128xi8> to memref<16xf32>
// CHECK-NOT: memref.alloc
func.func @in_loop(%out: memref<16xf32>, %lb: index, %ub: index,
                   %step: index) {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<16xf32>)
  scf.for %i = %lb to %ub step %step {
    %t = memref.alloc() : memref<16xf32>
    linalg.fill ins(%cst : f32) outs(%t : memref<16xf32>)
    memref.copy %a, %t : memref<16xf32> to memref<16xf32>
    memref.copy %t, %out : memref<16xf32> to memref<16xf32>
  }
  %b = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%b : memref<16xf32>)
  memref.copy %b, %out : memref<16xf32> to memref<16xf32>
  return
}

// -----

// Tests that an allocation returned from the function, one yielded from an
// scf.for and one with a dynamic size are left to the deallocation pipeline;
// only the plain temporary is planned.
// CHECK-LABEL: memref.global "private" @__loom_workspace_escapes : memref<64xi8>
// CHECK-LABEL: func.func @escapes
// CHECK-SAME: attributes {loom.workspace_bytes = 64 : i64}
// CHECK: %[[RET:.*]] = memref.alloc() : memref<16xf32>
// CHECK: scf.for
// CHECK-NEXT: %[[Y:.*]] = memref.alloc() : memref<16xf32>
// CHECK: scf.yield %[[Y]]
// CHECK: %[[DYN:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: %[[TMP:.*]] = memref.view %{{.*}}[%{{.*}}][] : memref<64xi8> to memref<16xf32>
// CHECK: memref.copy %{{.*}}, %[[TMP]]
// CHECK: return %[[RET]]
func.func @escapes(%n: index, %buf: memref<16xf32>) -> memref<16xf32> {
  %cst = arith.constant 1.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %ret = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%ret : memref<16xf32>)
  %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%it = %buf) -> (memref<16xf32>) {
    %y = memref.alloc() : memref<16xf32>
    memref.copy %it, %y : memref<16xf32> to memref<16xf32>
    scf.yield %y : memref<16xf32>
  }
  %dyn = memref.alloc(%n) : memref<?xf32>
  linalg.fill ins(%cst : f32) outs(%dyn : memref<?xf32>)
  %tmp = memref.alloc() : memref<16xf32>
  memref.copy %r, %tmp : memref<16xf32> to memref<16xf32>
  memref.copy %tmp, %ret : memref<16xf32> to memref<16xf32>
  return %ret : memref<16xf32>
}

// -----

// Tests that an allocation inside an scf.forall is left alone (one slot would
// be shared by concurrent iterations), dealloc included, and that a function
// with nothing to plan gets no workspace.
// CHECK-NOT: memref.global
// CHECK-LABEL: func.func @forall
// CHECK-NOT: loom.workspace_bytes
// CHECK: scf.forall
// CHECK-NEXT: %[[T:.*]] = memref.alloc() : memref<16xf32>
// CHECK: memref.dealloc %[[T]] : memref<16xf32>
// CHECK-NOT: memref.view
func.func @forall(%out: memref<4x16xf32>) {
  %cst = arith.constant 1.0 : f32
  scf.forall (%i) in (4) {
    %t = memref.alloc() : memref<16xf32>
    linalg.fill ins(%cst : f32) outs(%t : memref<16xf32>)
    %row = memref.subview %out[%i, 0] [1, 16] [1, 1]
        : memref<4x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    memref.copy %t, %row : memref<16xf32> to memref<16xf32, strided<[1], offset: ?>>
    memref.dealloc %t : memref<16xf32>
  }
  return
}

// -----

// Tests that an allocation passed to a call that returns no memref (an
// outlined layer, a kernel) is planned: the callee cannot keep it.
// CHECK-LABEL: memref.global "private" @__loom_workspace_call
// CHECK-LABEL: func.func @call
// CHECK-SAME: loom.workspace_bytes = 64
// CHECK-NOT: memref.alloc
// CHECK: %[[A:.*]] = memref.view
// CHECK: call @consume(%[[A]])
func.func private @consume(memref<16xf32>)
func.func @call() {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<16xf32>)
  func.call @consume(%a) : (memref<16xf32>) -> ()
  return
}

// -----

// Tests that an allocation passed to a call that returns a memref (which may
// alias it) is left alone.
// CHECK-NOT: memref.global
// CHECK-LABEL: func.func @aliasing_call
// CHECK-NOT: loom.workspace_bytes
// CHECK: %[[A:.*]] = memref.alloc() : memref<16xf32>
// CHECK: call @identity(%[[A]])
func.func private @identity(memref<16xf32>) -> memref<16xf32>
func.func @aliasing_call() -> memref<16xf32> {
  %cst = arith.constant 1.0 : f32
  %a = memref.alloc() : memref<16xf32>
  linalg.fill ins(%cst : f32) outs(%a : memref<16xf32>)
  %b = func.call @identity(%a) : (memref<16xf32>) -> memref<16xf32>
  return %b : memref<16xf32>
}
