//===- IRTest.cpp - loom dialect and pass unit tests ----------------------===//

#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

TEST(BroadcastShapes, AlignsTrailingDims) {
  auto r = loom::broadcastShapes({2, 3, 4}, {4});
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, (SmallVector<int64_t>{2, 3, 4}));
}

TEST(BroadcastShapes, StretchesOnes) {
  auto r = loom::broadcastShapes({5, 1, 4}, {3, 1});
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, (SmallVector<int64_t>{5, 3, 4}));
}

TEST(BroadcastShapes, DynamicMatchesStatic) {
  auto r = loom::broadcastShapes({kDyn, 7}, {3, 1});
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, (SmallVector<int64_t>{3, 7}));
  auto s = loom::broadcastShapes({kDyn, 1}, {kDyn, 9});
  ASSERT_TRUE(succeeded(s));
  EXPECT_EQ(*s, (SmallVector<int64_t>{kDyn, 9}));
}

TEST(BroadcastShapes, RejectsMismatch) {
  EXPECT_TRUE(failed(loom::broadcastShapes({2, 3}, {4})));
  EXPECT_TRUE(failed(loom::broadcastShapes({kDyn, 2}, {3})));
}

TEST(BroadcastShapes, ScalarsStayScalar) {
  auto r = loom::broadcastShapes({}, {});
  ASSERT_TRUE(succeeded(r));
  EXPECT_TRUE(r->empty());
}

class LoomIRTest : public ::testing::Test {
protected:
  LoomIRTest() {
    context.getOrLoadDialect<loom::LoomDialect>();
    context.getOrLoadDialect<func::FuncDialect>();
  }
  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, &context);
  }
  MLIRContext context;
};

TEST_F(LoomIRTest, BuilderInfersMatmulType) {
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  auto module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  auto lhsTy = RankedTensorType::get({8, kDyn, 64}, b.getF32Type());
  auto rhsTy = RankedTensorType::get({64, 32}, b.getF32Type());
  auto func = func::FuncOp::create(b, loc, "f",
                                   b.getFunctionType({lhsTy, rhsTy}, {}));
  b.setInsertionPointToEnd(func.addEntryBlock());
  auto mm = loom::MatmulOp::create(b, loc, func.getArgument(0),
                                   func.getArgument(1));
  EXPECT_EQ(mm.getType(),
            RankedTensorType::get({8, kDyn, 32}, b.getF32Type()));
  func::ReturnOp::create(b, loc);
  func.setFunctionType(b.getFunctionType({lhsTy, rhsTy}, {}));
  EXPECT_TRUE(succeeded(verify(module)));
  module->destroy();
}

TEST_F(LoomIRTest, SpecializeBindsAndCountsFlops) {
  auto module = parse(R"mlir(
    func.func @f(%a: tensor<?x?xf32> {loom.dims = ["B", "T"]},
                 %w: tensor<?x5xf32> {loom.dims = ["T", ""]}) -> tensor<?x5xf32> {
      %0 = loom.matmul %a, %w : tensor<?x?xf32>, tensor<?x5xf32>
      %1 = loom.exp %0 : tensor<?x5xf32>
      return %1 : tensor<?x5xf32>
    })mlir");
  ASSERT_TRUE(module);
  PassManager pm(&context);
  loom::PreparePipelineOptions options;
  options.bind = {"B=3", "T=7"};
  loom::buildPreparePipeline(pm, options);
  ASSERT_TRUE(succeeded(pm.run(*module)));

  auto func = module->lookupSymbol<func::FuncOp>("f");
  auto f32 = FloatType(Float32Type::get(&context));
  EXPECT_EQ(func.getFunctionType().getResult(0),
            RankedTensorType::get({3, 5}, f32));
  EXPECT_EQ(func.getArgument(1).getType(), RankedTensorType::get({7, 5}, f32));
  auto flops = func->getAttrOfType<IntegerAttr>("loom.flops");
  ASSERT_TRUE(flops);
  // matmul 2*M*N*K = 2*3*5*7, exp one per element = 15.
  EXPECT_EQ(flops.getInt(), 2 * 3 * 5 * 7 + 15);
}

TEST_F(LoomIRTest, SpecializeReportsUnboundDim) {
  auto module = parse(R"mlir(
    func.func @f(%a: tensor<?xf32> {loom.dims = ["N"]}) -> tensor<?xf32> {
      return %a : tensor<?xf32>
    })mlir");
  ASSERT_TRUE(module);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  PassManager pm(&context);
  loom::LoomSpecializeOptions options;
  options.bind = {"B=2"};
  pm.addPass(loom::createLoomSpecialize(options));
  EXPECT_TRUE(failed(pm.run(*module)));
  EXPECT_NE(message.find("dim 'N' of argument #0 is not bound"),
            std::string::npos)
      << message;
}

TEST_F(LoomIRTest, TransposeOfTransposeComposes) {
  auto module = parse(R"mlir(
    func.func @f(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
      %0 = loom.transpose %x, perm = [1, 2, 0] : tensor<2x3x4xf32>
      %1 = loom.transpose %0, perm = [1, 2, 0] : tensor<3x4x2xf32>
      return %1 : tensor<4x2x3xf32>
    })mlir");
  ASSERT_TRUE(module);
  PassManager pm(&context);
  loom::buildPreparePipeline(pm, {});
  ASSERT_TRUE(succeeded(pm.run(*module)));
  auto func = module->lookupSymbol<func::FuncOp>("f");
  SmallVector<loom::TransposeOp> transposes(
      func.getOps<loom::TransposeOp>());
  ASSERT_EQ(transposes.size(), 1u);
  EXPECT_EQ(transposes[0].getPerm(), (ArrayRef<int64_t>{2, 0, 1}));
  EXPECT_EQ(transposes[0].getInput(), func.getArgument(0));
}

} // namespace
