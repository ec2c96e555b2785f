func.func @f() {
  %0 = loom.bogus
}
