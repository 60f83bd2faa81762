export PS1="sandbox:\w\$ "
