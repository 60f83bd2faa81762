# Sourced by install.sh and uninstall.sh: exports the settings of .env that the environment does not set
# already, the same precedence Docker Compose gives them.
if [ -f .env ]; then
  while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    key=${line%%=*}
    [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!key+set}" ] || export "$key=${line#*=}"
  done < .env
fi
