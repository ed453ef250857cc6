package supervisor

// LookPath finds file as Run will when it starts the child: a name with a
// slash is used as it is; any other is searched in the PATH of env (the
// child's environment, K=V), or in the usual default path when env has no
// PATH. spotinit --check uses it to find the command exactly as a run
// would.
func LookPath(file string, env []string) (string, error) { return lookPath(file, env) }
