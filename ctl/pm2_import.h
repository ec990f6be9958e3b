// corralctl pm2-import FILE: prints the corral-agent command line (or a
// Kubernetes container) for each app of a PM2 ecosystem file, and on stderr
// what has no equivalent. A JavaScript file is the user's own code: it is
// evaluated by `node` in a child process, as PM2 itself does.
#ifndef CORRAL_CTL_PM2_IMPORT_H_
#define CORRAL_CTL_PM2_IMPORT_H_

#include <string>

namespace corral::ctl {

struct Pm2ImportArgs {
  std::string file;
  std::string env;               // PM2's --env NAME: env_NAME over env
  std::string app;               // only this app
  std::string format = "shell";  // shell, k8s or json
  int port = 0;                  // the agent's --listen port; 0 = $PORT/3000
  std::string node = "node";     // evaluates .js/.cjs/.mjs files
  double timeout_seconds = 10;   // for node to print the config
};

// Exit codes: 0 printed (notes on stderr), 1 the file cannot be read,
// evaluated or understood, 2 usage.
int Pm2Import(const Pm2ImportArgs& args);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_PM2_IMPORT_H_
