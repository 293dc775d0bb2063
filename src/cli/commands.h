/* One function per subcommand, each in its own file of src/cli. A command
 * gets argv after the subcommand name and returns the process exit status:
 * 0 success, 1 failure of the work (message printed), 2 bad usage (one clear
 * line naming the flag or value). */
#ifndef SEGNAS_CLI_COMMANDS_H
#define SEGNAS_CLI_COMMANDS_H

int cmd_demo(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `segnas stats` (src/cli/stats.c): params and Multi-Adds of a discrete network. */
int cmd_stats(int argc, char **argv);
/* `segnas data synth` (src/cli/data_synth.c), dispatched by cmd_data. */
int cmd_data_synth(int argc, char **argv);
/* `segnas train`, `eval`, `predict` (src/cli/train.c, eval.c, predict.c): a discrete network. */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);

/* `segnas plot` (src/cli/plot.c): SVG curves of a run folder from its log.jsonl. */
int cmd_plot(int argc, char **argv);
/* `segnas sample-arch` (src/cli/sample_arch.c): a random architecture of the search space. */
int cmd_sample_arch(int argc, char **argv);

#endif
