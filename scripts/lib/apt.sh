# Sourced by setup steps: install one Debian package with apt-get (as root or through sudo).
# apt_install STEP PACKAGE WHAT: STEP names the step in messages, WHAT says why it is needed.
apt_install() {
  local step=$1 package=$2 what=$3 sudo=""
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$step: $package is missing and apt-get is not available; install it ($what)" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "$step: installing $package needs root (or sudo)" >&2
      return 1
    fi
  fi
  echo "==> $step: installing Debian's $package for $what (once; a minute at most)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null
}
