# Login shells in a sandbox start in the app directory.
export PATH="$HOME/.local/bin:$PATH"
[ -d "$HOME/workspace/app" ] && cd "$HOME/workspace/app"
