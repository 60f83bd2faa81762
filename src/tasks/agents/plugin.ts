import type { TaskEventBody, Usage } from '../../model/task-events.ts';

/** What a task asks an agent to do. */
export interface AgentRequest {
  prompt: string;
  model: string | null;
  taskId: string;
  /** The sandbox env with the task's env over it. */
  env: Record<string, string>;
}

/** The argv that runs an agent headless with JSON-lines output, and the env it runs with. */
export interface AgentCommand {
  cmd: string[];
  env: Record<string, string>;
}

/**
 * Turns an agent's JSON output, one line at a time, into normalised events, and remembers what the end
 * of the run needs: the final message, the usage total and the error the agent reported, if any.
 */
export interface Normaliser {
  line(text: string): TaskEventBody[];
  readonly finalMessage: string | null;
  readonly usage: Usage;
  /** The provider's or agent's own error message, when the run failed. */
  readonly error: string | null;
  /** Whether the output says the run finished (a result line); an agent without one is always finished. */
  readonly finished: boolean;
}

/** One coding agent a task can run: how it is started, what its env must hold, how its output is read. */
export interface AgentPlugin<N extends string = string> {
  /** The task's `agent` value. */
  readonly name: N;
  /** One line for the API's `agent` description and the docs: the CLI and the env it reads. */
  readonly description: string;
  /** The command line and env that run it headless; the prompt comes after `--`, so a leading dash is never an option. */
  command(r: AgentRequest): AgentCommand;
  /** Checks a task's env before anything runs: the problem, naming the field (`env.NAME: ...`), or undefined. */
  envProblem(env: Record<string, string>): string | undefined;
  /** A normaliser for one run's output. */
  normaliser(): Normaliser;
}
