//===- LoomDialect.cpp - The loom dialect ---------------------------------===//

#include "ir/LoomDialect.h"
#include "ir/LoomOps.h"

#include "ir/LoomDialect.cpp.inc"

using namespace mlir;

void loom::LoomDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ir/LoomOps.cpp.inc"
      >();
}

Operation *loom::LoomDialect::materializeConstant(OpBuilder &builder,
                                                  Attribute value, Type type,
                                                  Location loc) {
  auto elements = llvm::dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements);
}
