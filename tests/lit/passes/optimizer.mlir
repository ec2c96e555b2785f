// RUN: loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer=kind=sgd | FileCheck %s --check-prefix=SGD
// RUN: loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer="kind=sgd momentum=0.9 nesterov" | FileCheck %s --check-prefix=NESTEROV
// RUN: loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer="kind=adam weight-decay=0.1" | FileCheck %s --check-prefix=ADAM
// RUN: loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer="kind=adamw weight-decay=0.1 max-grad-norm=2.0" | FileCheck %s --check-prefix=ADAMW
// RUN: not loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer=kind=rmsprop 2>&1 | FileCheck %s --check-prefix=BAD-KIND
// RUN: not loom-opt %s -loom-autodiff="trainable=w,b" -loom-materialize-parameters -loom-optimizer="kind=sgd nesterov" 2>&1 | FileCheck %s --check-prefix=BAD-NESTEROV
// RUN: not loom-opt %s -loom-optimizer=kind=sgd 2>&1 | FileCheck %s --check-prefix=NO-GRAD

// The model: @w (40 floats at offset 0) and @b (5 floats at byte offset 192,
// float 48, with an LR multiplier of 0.5) are trainable; @e (at float 64)
// is frozen, so no update touches it and its gradient is not computed.
// The parameter buffer holds 80 floats.

// Plain stochastic gradient descent has no state arguments; the parameters
// are updated in place (a writable argument, a result marked as its update).
// SGD-LABEL: func.func @train_step(
// SGD-SAME: %[[P:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "params"},
// SGD-SAME: %[[H:arg[0-9]+]]: tensor<4xf32> {bufferization.writable = false, loom.name = "hyper"},
// SGD-SAME: %{{.*}}: tensor<4x8xf32> {bufferization.writable = false}, %{{.*}}: tensor<4xi32> {bufferization.writable = false})
// SGD-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<80xf32> {loom.name = "params", loom.updates = 0 : i64}, tensor<f32> {loom.name = "grad_norm"}, tensor<i64> {loom.name = "first_non_finite"})
// SGD-SAME: loom.optimizer_states = 0
// SGD-NOT: loom.get_parameter
// SGD: loom.cross_entropy
// SGD: %[[LOSS:.*]] = loom.add %{{.*}}, %{{.*}} : tensor<f32>, tensor<f32>
// SGD: %[[G:.*]] = tensor.concat dim(0) %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<40xf32>, tensor<8xf32>, tensor<5xf32>, tensor<27xf32>) -> tensor<80xf32>
// SGD: %[[C0:.*]] = arith.constant 0 : index
// SGD-NEXT: %[[LR:.*]] = tensor.extract %[[H]][%[[C0]]] : tensor<4xf32>
// The gradient norm: squares summed per vector lane over a grid (1 chunk
// of 5 rows of 16 lanes here), then the lanes summed.
// SGD: %[[GRID:.*]] = tensor.expand_shape %[[G]] {{\[\[}}0, 1, 2]] output_shape [1, 5, 16] : tensor<80xf32> into tensor<1x5x16xf32>
// SGD: %[[LANES:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[GRID]] : tensor<1x5x16xf32>) outs(%{{.*}} : tensor<1x16xf32>)
// SGD-NEXT: ^bb0(%[[X:[^:]+]]: f32, %[[ACC:[^:]+]]: f32):
// SGD-NEXT: %[[X2:.*]] = arith.mulf %[[X]], %[[X]] : f32
// SGD-NEXT: %[[SUM:.*]] = arith.addf %[[ACC]], %[[X2]] : f32
// SGD-NEXT: linalg.yield %[[SUM]] : f32
// SGD: %[[FLAT:.*]] = tensor.collapse_shape %[[LANES]] {{\[\[}}0, 1]] : tensor<1x16xf32> into tensor<16xf32>
// SGD: %[[SQ:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%[[FLAT]] : tensor<16xf32>)
// SGD: %[[SQS:.*]] = tensor.extract %[[SQ]][] : tensor<f32>
// SGD-NEXT: %[[NORM:.*]] = math.sqrt %[[SQS]] : f32
// SGD-NOT: arith.minimumf
// SGD: %[[GN:.*]] = tensor.from_elements %[[NORM]] : tensor<f32>
// The check, read-only: per run (40 floats of @w at LR x 1, 5 of @b at
// LR x 0.5), the smallest offset whose update is not finite (|p'| < inf
// fails for infinities and NaN), the run's length where none is; then the
// smallest buffer index, 80 where none is.
// The runs' learning rates first, for the check and the update.
// SGD: %[[MW:.*]] = arith.constant 1.000000e+00 : f32
// SGD-NEXT: %[[LRW:.*]] = arith.mulf %[[LR]], %[[MW]] : f32
// SGD-NEXT: %[[MB:.*]] = arith.constant 5.000000e-01 : f32
// SGD-NEXT: %[[LRB:.*]] = arith.mulf %[[LR]], %[[MB]] : f32
// SGD: %[[PW:.*]] = tensor.extract_slice %[[P]][0] [40] [1] : tensor<80xf32> to tensor<40xf32>
// SGD: %[[CW:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<1x40xf32>, tensor<1x40xf32>) outs(%{{.*}} : tensor<1xi32>)
// SGD-NEXT: ^bb0(%[[cp:[^:]+]]: f32, %[[cg:[^:]+]]: f32, %[[cacc:[^:]+]]: i32):
// SGD-NEXT: %[[cgc:.*]] = arith.mulf %[[cg]], %{{.*}} : f32
// SGD-NEXT: %[[cstep:.*]] = arith.mulf %[[LRW]], %[[cgc]] : f32
// SGD-NEXT: %[[cnew:.*]] = arith.subf %[[cp]], %[[cstep]] : f32
// SGD-NEXT: %[[INF:.*]] = arith.constant 0x7F800000 : f32
// SGD-NEXT: %[[ABS:.*]] = math.absf %[[cnew]] : f32
// SGD-NEXT: %[[FIN:.*]] = arith.cmpf olt, %[[ABS]], %[[INF]] : f32
// SGD-NEXT: %[[IDX:.*]] = linalg.index 1 : index
// SGD-NEXT: %[[OFF:.*]] = arith.index_cast %[[IDX]] : index to i32
// SGD-NEXT: %[[LEN:.*]] = arith.constant 40 : i32
// SGD-NEXT: %[[CAND:.*]] = arith.select %[[FIN]], %[[LEN]], %[[OFF]] : i32
// SGD-NEXT: %[[MIN:.*]] = arith.minui %[[cacc]], %[[CAND]] : i32
// SGD-NEXT: linalg.yield %[[MIN]] : i32
// SGD: %[[FW:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%[[CW]] : tensor<1xi32>) outs(%{{.*}} : tensor<i64>)
// SGD: arith.minsi
// SGD: %[[FWS:.*]] = tensor.extract %[[FW]][] : tensor<i64>
// SGD-NEXT: %[[F1:.*]] = arith.minsi %{{.*}}, %[[FWS]] : i64
// SGD: %[[CB:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x5xf32>, tensor<1x5xf32>) outs(%{{.*}} : tensor<1xi32>)
// SGD: %[[FB:.*]] = linalg.generic {{.*}} ins(%[[CB]] : tensor<1xi32>) outs(%{{.*}} : tensor<i64>)
// SGD: arith.constant 48 : i64
// SGD: %[[FBS:.*]] = tensor.extract %[[FB]][] : tensor<i64>
// SGD-NEXT: %[[FIRST:.*]] = arith.minsi %[[F1]], %[[FBS]] : i64
// The step commits when every update, the loss and the norm are finite.
// SGD-NEXT: %[[L:.*]] = tensor.extract %[[LOSS]][] : tensor<f32>
// SGD-NEXT: %[[NONE:.*]] = arith.constant 80 : i64
// SGD-NEXT: %[[ALLFIN:.*]] = arith.cmpi eq, %[[FIRST]], %[[NONE]] : i64
// SGD: %[[LFIN:.*]] = arith.cmpf olt, %{{.*}}, %{{.*}} : f32
// SGD: %[[NFIN:.*]] = arith.cmpf olt, %{{.*}}, %{{.*}} : f32
// SGD-NEXT: %[[BOTH:.*]] = arith.andi %[[LFIN]], %[[NFIN]] : i1
// SGD-NEXT: %[[COMMIT:.*]] = arith.andi %[[ALLFIN]], %[[BOTH]] : i1
// The update, in place: the parameters are the loop's output, read
// through its output argument, written back unchanged when the step does
// not commit.
// SGD: %[[PW2:.*]] = tensor.extract_slice %[[P]][0] [40] [1] : tensor<80xf32> to tensor<40xf32>
// SGD-NEXT: %[[GW:.*]] = tensor.extract_slice %[[G]][0] [40] [1] : tensor<80xf32> to tensor<40xf32>
// SGD-NEXT: %[[UW:.*]] = linalg.generic {{.*}}iterator_types = ["parallel"]} ins(%[[GW]] : tensor<40xf32>) outs(%[[PW2]] : tensor<40xf32>)
// SGD-NEXT: ^bb0(%[[g:[^:]+]]: f32, %[[p:[^:]+]]: f32):
// SGD-NEXT: %[[gc:.*]] = arith.mulf %[[g]], %{{.*}} : f32
// SGD-NEXT: %[[step:.*]] = arith.mulf %{{.*}}, %[[gc]] : f32
// SGD-NEXT: %[[new:.*]] = arith.subf %[[p]], %[[step]] : f32
// SGD-NEXT: %[[kept:.*]] = arith.select %[[COMMIT]], %[[new]], %[[p]] : f32
// SGD-NEXT: linalg.yield %[[kept]] : f32
// SGD: %[[P1:.*]] = tensor.insert_slice %[[UW]] into %[[P]][0] [40] [1] : tensor<40xf32> into tensor<80xf32>
// SGD-NEXT: %[[PB:.*]] = tensor.extract_slice %[[P1]][48] [5] [1] : tensor<80xf32> to tensor<5xf32>
// SGD-NEXT: %[[GB:.*]] = tensor.extract_slice %[[G]][48] [5] [1] : tensor<80xf32> to tensor<5xf32>
// SGD-NEXT: %[[UB:.*]] = linalg.generic {{.*}} ins(%[[GB]] : tensor<5xf32>) outs(%[[PB]] : tensor<5xf32>)
// SGD: arith.mulf %[[LRB]], %{{.*}} : f32
// SGD: arith.select %[[COMMIT]]
// SGD: %[[P2:.*]] = tensor.insert_slice %[[UB]] into %[[P1]][48] [5] [1] : tensor<5xf32> into tensor<80xf32>
// SGD-NEXT: %[[FT:.*]] = tensor.from_elements %[[FIRST]] : tensor<i64>
// SGD-NOT: linalg.generic
// SGD-NOT: [64]
// SGD: return %[[LOSS]], %[[P2]], %[[GN]], %[[FT]] : tensor<f32>, tensor<80xf32>, tensor<f32>, tensor<i64>

// Stochastic gradient descent with Nesterov momentum has one state buffer `m`, updated in place;
// m' = mu * m + g and p' = p - lr * (g + mu * m').
// NESTEROV-LABEL: func.func @train_step(
// NESTEROV-SAME: %[[P:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "params"},
// NESTEROV-SAME: %[[M:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "m"},
// NESTEROV-SAME: %[[H:arg[0-9]+]]: tensor<4xf32> {bufferization.writable = false, loom.name = "hyper"},
// NESTEROV-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<80xf32> {loom.name = "params", loom.updates = 0 : i64}, tensor<80xf32> {loom.name = "m", loom.updates = 1 : i64}, tensor<f32> {loom.name = "grad_norm"}, tensor<i64> {loom.name = "first_non_finite"})
// NESTEROV-SAME: loom.optimizer_states = 1
// NESTEROV: %[[G:.*]] = tensor.concat dim(0)
// NESTEROV: %[[LR:.*]] = tensor.extract %[[H]][%{{.*}}] : tensor<4xf32>
// NESTEROV: linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]}
// NESTEROV: %[[LRW:.*]] = arith.mulf %[[LR]], %{{.*}} : f32
// The check reads m beside p and g, and tests p' and m'.
// NESTEROV: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<1x40xf32>, tensor<1x40xf32>, tensor<1x40xf32>) outs(%{{.*}} : tensor<1xi32>)
// NESTEROV-COUNT-2: math.absf
// NESTEROV: arith.cmpi eq, %{{.*}}, %{{.*}} : i64
// NESTEROV: arith.andi %{{.*}}, %{{.*}} : i1
// NESTEROV-NEXT: %[[COMMIT:.*]] = arith.andi %{{.*}}, %{{.*}} : i1
// NESTEROV-NEXT: %[[PW:.*]] = tensor.extract_slice %[[P]][0] [40] [1]
// NESTEROV-NEXT: %[[MW:.*]] = tensor.extract_slice %[[M]][0] [40] [1]
// NESTEROV-NEXT: %[[GW:.*]] = tensor.extract_slice %[[G]][0] [40] [1]
// NESTEROV-NEXT: %[[UW:.*]]:2 = linalg.generic {{.*}} ins(%[[GW]] : tensor<40xf32>) outs(%[[PW]], %[[MW]] : tensor<40xf32>, tensor<40xf32>)
// NESTEROV-NEXT: ^bb0(%[[g:[^:]+]]: f32, %[[p:[^:]+]]: f32, %[[m:[^:]+]]: f32):
// NESTEROV-NEXT: %[[gc:.*]] = arith.mulf %[[g]], %{{.*}} : f32
// NESTEROV-NEXT: %[[mu:.*]] = arith.constant 0.899999976 : f32
// NESTEROV-NEXT: %[[mum:.*]] = arith.mulf %[[mu]], %[[m]] : f32
// NESTEROV-NEXT: %[[m1:.*]] = arith.addf %[[mum]], %[[gc]] : f32
// NESTEROV-NEXT: %[[mum1:.*]] = arith.mulf %[[mu]], %[[m1]] : f32
// NESTEROV-NEXT: %[[dir:.*]] = arith.addf %[[gc]], %[[mum1]] : f32
// NESTEROV-NEXT: %[[step:.*]] = arith.mulf %[[LRW]], %[[dir]] : f32
// NESTEROV-NEXT: %[[new:.*]] = arith.subf %[[p]], %[[step]] : f32
// NESTEROV-NEXT: %[[p2:.*]] = arith.select %[[COMMIT]], %[[new]], %[[p]] : f32
// NESTEROV-NEXT: %[[m2:.*]] = arith.select %[[COMMIT]], %[[m1]], %[[m]] : f32
// NESTEROV-NEXT: linalg.yield %[[p2]], %[[m2]] : f32, f32
// NESTEROV: %[[P1:.*]] = tensor.insert_slice %[[UW]]#0 into %[[P]][0] [40] [1]
// NESTEROV-NEXT: %[[M1:.*]] = tensor.insert_slice %[[UW]]#1 into %[[M]][0] [40] [1]
// NESTEROV: %[[UB:.*]]:2 = linalg.generic {{.*}} ins(%{{.*}} : tensor<5xf32>) outs(%{{.*}}, %{{.*}} : tensor<5xf32>, tensor<5xf32>)
// NESTEROV: %[[P2:.*]] = tensor.insert_slice %[[UB]]#0 into %[[P1]][48] [5] [1]
// NESTEROV-NEXT: %[[M2:.*]] = tensor.insert_slice %[[UB]]#1 into %[[M1]][48] [5] [1]
// NESTEROV-NOT: [64]
// NESTEROV: return %{{.*}}, %[[P2]], %[[M2]], %{{.*}} : tensor<f32>, tensor<80xf32>, tensor<80xf32>, tensor<f32>, tensor<i64>

// Adam with (coupled, L2) weight decay: two state buffers; g += wd * p
// before the moments, bias corrections from hyper[1] and hyper[2], no
// decoupled decay after the step.
// ADAM-LABEL: func.func @train_step(
// ADAM-SAME: %[[P:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "params"},
// ADAM-SAME: %[[M:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "m"},
// ADAM-SAME: %[[V:arg[0-9]+]]: tensor<80xf32> {bufferization.writable = true, loom.name = "v"},
// ADAM-SAME: %[[H:arg[0-9]+]]: tensor<4xf32> {bufferization.writable = false, loom.name = "hyper"},
// ADAM-SAME: -> (tensor<f32> {loom.name = "loss"}, tensor<80xf32> {loom.name = "params", loom.updates = 0 : i64}, tensor<80xf32> {loom.name = "m", loom.updates = 1 : i64}, tensor<80xf32> {loom.name = "v", loom.updates = 2 : i64}, tensor<f32> {loom.name = "grad_norm"}, tensor<i64> {loom.name = "first_non_finite"})
// ADAM-SAME: loom.optimizer_states = 2
// ADAM: %[[LR:.*]] = tensor.extract %[[H]][%{{.*}}] : tensor<4xf32>
// ADAM-NEXT: %[[C1:.*]] = arith.constant 1 : index
// ADAM-NEXT: %[[BC1:.*]] = tensor.extract %[[H]][%[[C1]]] : tensor<4xf32>
// ADAM-NEXT: %[[C2:.*]] = arith.constant 2 : index
// ADAM-NEXT: %[[BC2:.*]] = tensor.extract %[[H]][%[[C2]]] : tensor<4xf32>
// ADAM: %[[LRW:.*]] = arith.mulf %[[LR]], %{{.*}} : f32
// ADAM-NEXT: %[[MB:.*]] = arith.constant 5.000000e-01 : f32
// ADAM-NEXT: %[[LRB:.*]] = arith.mulf %[[LR]], %[[MB]] : f32
// The check tests p', m' and v'.
// ADAM: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<1x40xf32>, tensor<1x40xf32>, tensor<1x40xf32>, tensor<1x40xf32>) outs(%{{.*}} : tensor<1xi32>)
// ADAM-COUNT-3: math.absf
// ADAM: arith.cmpi eq, %{{.*}}, %{{.*}} : i64
// ADAM: arith.andi %{{.*}}, %{{.*}} : i1
// ADAM-NEXT: %[[COMMIT:.*]] = arith.andi %{{.*}}, %{{.*}} : i1
// ADAM: %[[UW:.*]]:3 = linalg.generic {{.*}} ins(%{{.*}} : tensor<40xf32>) outs(%{{.*}}, %{{.*}}, %{{.*}} : tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
// ADAM-NEXT: ^bb0(%[[g:[^:]+]]: f32, %[[p:[^:]+]]: f32, %[[m:[^:]+]]: f32, %[[v:[^:]+]]: f32):
// ADAM-NEXT: %[[gc:.*]] = arith.mulf %[[g]], %{{.*}} : f32
// ADAM-NEXT: %[[wd:.*]] = arith.constant 1.000000e-01 : f32
// ADAM-NEXT: %[[wdp:.*]] = arith.mulf %[[wd]], %[[p]] : f32
// ADAM-NEXT: %[[gd:.*]] = arith.addf %[[gc]], %[[wdp]] : f32
// ADAM-NEXT: %[[b1:.*]] = arith.constant 0.899999976 : f32
// ADAM-NEXT: %[[b1m:.*]] = arith.mulf %[[b1]], %[[m]] : f32
// ADAM-NEXT: %[[nb1:.*]] = arith.constant 1.000000e-01 : f32
// ADAM-NEXT: %[[nb1g:.*]] = arith.mulf %[[nb1]], %[[gd]] : f32
// ADAM-NEXT: %[[m1:.*]] = arith.addf %[[b1m]], %[[nb1g]] : f32
// ADAM-NEXT: %[[b2:.*]] = arith.constant 9.990000e-01 : f32
// ADAM-NEXT: %[[b2v:.*]] = arith.mulf %[[b2]], %[[v]] : f32
// ADAM-NEXT: %[[nb2:.*]] = arith.constant 1.000000e-03 : f32
// ADAM-NEXT: %[[g2:.*]] = arith.mulf %[[gd]], %[[gd]] : f32
// ADAM-NEXT: %[[nb2g2:.*]] = arith.mulf %[[nb2]], %[[g2]] : f32
// ADAM-NEXT: %[[v1:.*]] = arith.addf %[[b2v]], %[[nb2g2]] : f32
// ADAM-NEXT: %[[vhat:.*]] = arith.divf %[[v1]], %[[BC2]] : f32
// ADAM-NEXT: %[[root:.*]] = math.sqrt %[[vhat]] : f32
// ADAM-NEXT: %[[eps:.*]] = arith.constant 9.99999993E-9 : f32
// ADAM-NEXT: %[[den:.*]] = arith.addf %[[root]], %[[eps]] : f32
// ADAM-NEXT: %[[mhat:.*]] = arith.divf %[[m1]], %[[BC1]] : f32
// ADAM-NEXT: %[[dir:.*]] = arith.divf %[[mhat]], %[[den]] : f32
// ADAM-NEXT: %[[step:.*]] = arith.mulf %[[LRW]], %[[dir]] : f32
// ADAM-NEXT: %[[new:.*]] = arith.subf %[[p]], %[[step]] : f32
// ADAM-NEXT: %[[p2:.*]] = arith.select %[[COMMIT]], %[[new]], %[[p]] : f32
// ADAM-NEXT: %[[m2:.*]] = arith.select %[[COMMIT]], %[[m1]], %[[m]] : f32
// ADAM-NEXT: %[[v2:.*]] = arith.select %[[COMMIT]], %[[v1]], %[[v]] : f32
// ADAM-NEXT: linalg.yield %[[p2]], %[[m2]], %[[v2]] : f32, f32, f32
// ADAM: tensor.insert_slice %[[UW]]#0 into %[[P]][0] [40] [1]
// ADAM-NEXT: tensor.insert_slice %[[UW]]#1 into %[[M]][0] [40] [1]
// ADAM-NEXT: tensor.insert_slice %[[UW]]#2 into %[[V]][0] [40] [1]
// ADAM: %[[UB:.*]]:3 = linalg.generic
// ADAM: arith.mulf %[[LRB]], %{{.*}} : f32
// ADAM: tensor.insert_slice %[[UB]]#0 into %{{.*}}[48] [5] [1]
// ADAM-NEXT: tensor.insert_slice %[[UB]]#1 into %{{.*}}[48] [5] [1]
// ADAM-NEXT: tensor.insert_slice %[[UB]]#2 into %{{.*}}[48] [5] [1]
// ADAM-NOT: [64]
// ADAM: return

// AdamW with clipping at a global norm of 2: the factor
// min(2 / (norm + 1e-6), 1) scales every gradient; the decay is decoupled
// (p -= lr * (step + wd * p)) and not added to the gradient.
// ADAMW-LABEL: func.func @train_step(
// ADAMW-SAME: loom.optimizer_states = 2
// ADAMW: %[[G:.*]] = tensor.concat dim(0)
// ADAMW: linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]}
// ADAMW: %[[SQ:.*]] = linalg.generic {{.*}}iterator_types = ["reduction"]} ins(%{{.*}} : tensor<16xf32>)
// ADAMW: %[[SQS:.*]] = tensor.extract %[[SQ]][] : tensor<f32>
// ADAMW-NEXT: %[[NORM:.*]] = math.sqrt %[[SQS]] : f32
// ADAMW: %[[MAX:.*]] = arith.constant 2.000000e+00 : f32
// ADAMW-NEXT: %[[TINY:.*]] = arith.constant 9.99999997E-7 : f32
// ADAMW-NEXT: %[[D:.*]] = arith.addf %[[NORM]], %[[TINY]] : f32
// ADAMW-NEXT: %[[RATIO:.*]] = arith.divf %[[MAX]], %[[D]] : f32
// ADAMW-NEXT: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// ADAMW-NEXT: %[[CLIP:.*]] = arith.minimumf %[[RATIO]], %[[ONE]] : f32
// ADAMW-NEXT: tensor.from_elements %[[NORM]] : tensor<f32>
// The check clips as the update does.
// ADAMW: linalg.generic {{.*}} outs(%{{.*}} : tensor<1xi32>)
// ADAMW-NEXT: ^bb0(
// ADAMW-NEXT: arith.mulf %{{.*}}, %[[CLIP]] : f32
// ADAMW: %[[UW:.*]]:3 = linalg.generic {{.*}} ins(%{{.*}} : tensor<40xf32>) outs(%{{.*}}, %{{.*}}, %{{.*}} : tensor<40xf32>, tensor<40xf32>, tensor<40xf32>)
// ADAMW-NEXT: ^bb0(%[[g:[^:]+]]: f32, %[[p:[^:]+]]: f32,
// ADAMW-NEXT: %[[gc:.*]] = arith.mulf %[[g]], %[[CLIP]] : f32
// ADAMW-NEXT: arith.constant 0.899999976 : f32
// ADAMW-NOT: arith.addf %[[gc]]
// ADAMW: math.sqrt
// ADAMW: %[[mhat:.*]] = arith.divf %{{.*}}, %{{.*}} : f32
// ADAMW-NEXT: %[[dir:.*]] = arith.divf %[[mhat]], %{{.*}} : f32
// ADAMW-NEXT: %[[wd:.*]] = arith.constant 1.000000e-01 : f32
// ADAMW-NEXT: %[[wdp:.*]] = arith.mulf %[[wd]], %[[p]] : f32
// ADAMW-NEXT: %[[dird:.*]] = arith.addf %[[dir]], %[[wdp]] : f32
// ADAMW-NEXT: %[[step:.*]] = arith.mulf %{{.*}}, %[[dird]] : f32
// ADAMW-NEXT: %[[new:.*]] = arith.subf %[[p]], %[[step]] : f32
// ADAMW-NEXT: arith.select %{{.*}}, %[[new]], %[[p]] : f32
// ADAMW: %[[UB:.*]]:3 = linalg.generic
// ADAMW: arith.mulf %{{.*}}, %[[CLIP]] : f32
// ADAMW: tensor.insert_slice %[[UB]]#0 into %{{.*}}[48] [5] [1]
// ADAMW-NOT: [64]
// ADAMW: return

// BAD-KIND: error: loom-optimizer: unknown kind 'rmsprop'; expected sgd, adam or adamw
// BAD-NESTEROV: error: loom-optimizer: invalid hyperparameters {{.*}}nesterov only with momentum
// NO-GRAD: error: loom-optimizer: no gradient function 'loss_grad'

loom.parameter @w : tensor<8x5xf32> init = {kind = "normal", std = 2.000000e-02 : f64}
loom.parameter @b : tensor<5xf32> init = {kind = "zeros"} {loom.lr_mult = 5.000000e-01 : f64}
loom.parameter @e : tensor<3xf32> init = {kind = "zeros"}
func.func @loss(%x: tensor<4x8xf32>, %t: tensor<4xi32>) -> tensor<f32> {
  %w = loom.get_parameter @w : tensor<8x5xf32>
  %b = loom.get_parameter @b : tensor<5xf32>
  %e = loom.get_parameter @e : tensor<3xf32>
  %0 = loom.matmul %x, %w : tensor<4x8xf32>, tensor<8x5xf32>
  %1 = loom.add %0, %b : tensor<4x5xf32>, tensor<5xf32>
  %2 = loom.tanh %1 : tensor<4x5xf32>
  %l = loom.cross_entropy %2, %t, ignore_index = -100 : tensor<4x5xf32>, tensor<4xi32>
  %s = loom.reduce_sum %e, axes = [0], keepdim = false : tensor<3xf32>
  %r = loom.add %l, %s : tensor<f32>, tensor<f32>
  return %r : tensor<f32>
}
