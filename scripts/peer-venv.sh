#!/usr/bin/env bash
# Creates .venv-peer: a Python environment with PyTorch, used only as a peer
# in benchmarks (bench/peer/); Loom itself has no Python. Idempotent: a no-op
# when the environment already imports torch (in the wanted mode and version).
#
#   scripts/peer-venv.sh           PyPI torch, without the CUDA packages it can
#                                  load without (~2 GB instead of ~5 GB)
#   scripts/peer-venv.sh --full    plain `pip install torch` (every CUDA package)
#   scripts/peer-venv.sh --debian  Debian's python3-torch 1.13 with OpenBLAS
#                                  (apt), for a machine where PyPI is unreachable
#
#   TORCH_VERSION=2.15.0 (the default) pins the PyPI version; PYTHON picks the
#   interpreter the environment is made from (python3 >= 3.11).
#
# Why the default mode is not `pip install torch`: PyPI's Linux x86-64 wheel
# is built with CUDA and pulls ~3 GB of NVIDIA packages (CPU-only wheels live
# on download.pytorch.org, which these machines cannot reach). Its libraries
# link against the CUDA libraries, so `import torch` needs them present even
# to run on the CPU. So the wheel is installed with --no-deps, plus its
# pure-Python dependencies; then, until `import torch` works, the NVIDIA
# packages the dynamic loader asks for (a missing libX.so, or an undefined
# symbol because an older system copy was found) are added, pinned to the
# versions torch's own metadata names. On the build machines (CUDA 13.0
# libraries in /usr/local/cuda-13.0) that adds cufile, cusparseLt, nvshmem and
# nccl (~0.5 GB); on a machine without CUDA it adds every library torch loads
# (never triton or cuda-bindings, which only GPU use needs). If that cannot
# make torch import, it falls back to --full.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-peer
mode=pypi
case "${1:-}" in
  "") ;;
  --full) mode=full ;;
  --debian) mode=debian ;;
  *) echo "usage: scripts/peer-venv.sh [--full|--debian]" >&2; exit 2 ;;
esac
version=${TORCH_VERSION:-2.15.0}
want="$mode"
[ "$mode" = debian ] || want="$mode torch==$version"
py=$venv/bin/python

check='import torch
a = torch.randn(384, 384, dtype=torch.float64)
b = torch.randn(384, 384, dtype=torch.float64)
ref = (a @ b).float()
got = a.float() @ b.float()
assert torch.allclose(got, ref, rtol=1e-4, atol=1e-3), "matmul is wrong"
cpu = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()
print(f"torch {torch.__version__}: matmul on the CPU ok; "
      f"{torch.get_num_threads()} threads; CPU capability {cpu}")'

if [ -x $py ] && [ "$(cat $venv/peer-mode 2>/dev/null)" = "$want" ] &&
   $py -W ignore -c "$check" 2>/dev/null; then
  echo "peer-venv: $venv is ready ($want)"
  exit 0
fi

start=$SECONDS
rm -rf $venv
echo "peer-venv: creating $venv ($want); disk before:"
df -h . | tail -1

if [ "$mode" = debian ]; then
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends python3-torch libopenblas0-openmp python3-venv >/dev/null
  /usr/bin/python3 -m venv --system-site-packages $venv
else
  "${PYTHON:-python3}" -m venv $venv
  pip=($py -m pip install --quiet --no-input)
  if [ "$mode" = full ]; then
    "${pip[@]}" "torch==$version"
  else
    "${pip[@]}" --no-deps "torch==$version"
    echo "peer-venv: (pip's warnings that torch's CUDA dependencies are missing are expected)"
    # The helper below prints, one a line, the requirements to install next:
    # `deps` lists torch's pure-Python dependencies, `loader` the NVIDIA
    # packages for what stops `import torch` (or FULL when it cannot tell).
    helper='
import glob, importlib.metadata as md, os, re, subprocess, sys
reqs = md.requires("torch") or []
def name(r): return re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower()
def spec(r): return r.split(";")[0].strip()
if sys.argv[1] == "deps":
    for r in reqs:
        if "extra ==" not in r and not name(r).startswith(("nvidia-", "cuda-", "triton")):
            print(spec(r))
    sys.exit()
# Library stem or symbol prefix -> cuda-toolkit extra ("ct:...") or package.
table = {"cufile": "ct:cufile", "cuFile": "ct:cufile", "cudart": "ct:cudart",
         "cuda": "ct:cudart", "cublasLt": "ct:cublas", "cublas": "ct:cublas",
         "cufft": "ct:cufft", "cusparseLt": "nvidia-cusparselt",
         "cusparse": "ct:cusparse", "cusolver": "ct:cusolver", "nvrtc": "ct:nvrtc",
         "nvJitLink": "ct:nvjitlink", "cupti": "ct:cupti", "Cupti": "ct:cupti",
         "nvToolsExt": "ct:nvtx", "nvtx": "ct:nvtx", "nccl": "nvidia-nccl",
         "cudnn": "nvidia-cudnn", "nvshmem": "nvidia-nvshmem"}
def requirement(word):
    keys = [k for k in table if word.startswith(k)]
    if not keys: return None
    target = table[max(keys, key=len)]
    if target.startswith("ct:"):
        ct = [r for r in reqs if name(r) == "cuda-toolkit"]
        if not ct: return None
        version = re.search(r"==\s*([\w.]+)", ct[0])
        return f"cuda-toolkit[{target[3:]}]" + (f"=={version[1]}" if version else "")
    match = [spec(r) for r in reqs if name(r).startswith(target)]
    return match[0] if match else None
torch_dir = os.path.dirname(md.distribution("torch").locate_file("torch/__init__.py"))
words = set()
for lib in glob.glob(torch_dir + "/_C*.so") + glob.glob(torch_dir + "/lib/libtorch*.so"):
    out = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    words |= set(re.findall(r"^\s*lib(\w+)\.so\S* => not found", out, re.M))
if not words:
    probe = subprocess.run([sys.executable, "-c", "import torch"],
                           capture_output=True, text=True)
    if probe.returncode == 0: sys.exit()
    err = probe.stderr
    words = set(re.findall(r"lib(\w+)\.so\S*: cannot open shared object", err)
                + re.findall(r"undefined symbol: (\w+)", err))
    if not words:
        print("FULL"); sys.exit()
out = {requirement(w) for w in words}
print("\n".join(["FULL"] if None in out else sorted(out)))
'
    mapfile -t deps < <($py -c "$helper" deps)
    "${pip[@]}" "${deps[@]}"
    for _ in 1 2 3 4 5 6; do
      mapfile -t more < <($py -c "$helper" loader)
      ((${#more[@]})) || break
      if [ "${more[0]}" = FULL ]; then
        echo "peer-venv: cannot tell what torch lacks; installing its full dependencies"
        "${pip[@]}" "torch==$version"
        break
      fi
      echo "peer-venv: import torch needs ${more[*]}"
      "${pip[@]}" "${more[@]}"
    done
  fi
fi

$py -W ignore -c "$check"
echo "$want" >$venv/peer-mode
echo "peer-venv: done in $((SECONDS - start)) s; $(du -sh $venv | cut -f1) in $venv"
if [ "$mode" = debian ]; then
  dpkg-query -W python3-torch libopenblas0-openmp
else
  $py -m pip list --format=freeze 2>/dev/null | sed 's/^/  /'
fi
