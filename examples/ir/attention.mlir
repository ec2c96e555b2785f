// Scaled dot-product attention scores for one head, written directly in the
// loom dialect: softmax(q @ k^T / sqrt(d)) @ v over symbolic dims B and T.
//
//   loomc compile examples/ir/attention.mlir --bind B=2,T=16
func.func @attention(%q: tensor<?x?x64xf32> {loom.dims = ["B", "T", ""]},
                     %k: tensor<?x?x64xf32> {loom.dims = ["B", "T", ""]},
                     %v: tensor<?x?x64xf32> {loom.dims = ["B", "T", ""]})
    -> tensor<?x?x64xf32> {
  %kt = loom.transpose %k, perm = [0, 2, 1] : tensor<?x?x64xf32>
  %s = loom.matmul %q, %kt : tensor<?x?x64xf32>, tensor<?x64x?xf32>
  %scale = loom.constant dense<0.125> : tensor<f32>
  %ss = loom.mul %s, %scale : tensor<?x?x?xf32>, tensor<f32>
  %p = loom.softmax %ss, axis = 2 : tensor<?x?x?xf32>
  %o = loom.matmul %p, %v : tensor<?x?x?xf32>, tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}
