# -*- Python -*-
# lit configuration of Loom's FileCheck suite.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "Loom"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".loom", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.loom_obj_root, "tests", "lit")

config.substitutions.append(("%loom_src", config.loom_src_root))
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"
# loomc run/train/sample keep compiled functions in the build tree, not in
# the home directory.
config.environment["LOOM_CACHE_DIR"] = os.path.join(config.loom_obj_root,
                                                     "compile-cache")

# FileCheck, not and count live beside lit in LLVM's bin folder; the loom
# tools in the build tree.
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.loom_tools_dir, append_path=True)
llvm_config.use_default_substitutions()
llvm_config.add_tool_substitutions(["loom-opt", "loomc"],
                                   [config.loom_tools_dir])
