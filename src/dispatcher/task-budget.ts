/**
 * A task's budget (new_task max_cost / max_tokens, or the project's default from the config file).
 * Agents report usage in their own way and time (see docs/review.md): ACP agents during the turn,
 * as usage_update cost (opencode, Claude) or per-message tokens (Qwen), and the rest once the turn
 * ends. Whenever usage arrives it is compared with the budget; the first report past it aborts the
 * run's signal with reason 'budget', which ends the turn the way a cancel does (session/cancel, the
 * agent kept warm) and records the task failed with E_BUDGET_EXCEEDED, its changes so far captured.
 */
import type { TurnUsage } from '../agents/agent-backend.js';
import type { Task } from '../db/rows.js';

export interface BudgetLimits {
  maxCost: number | null;
  maxTokens: number | null;
}

/** What passed the budget, in words (for the task's last_error), or null while within it. */
export function budgetOverrun(limits: BudgetLimits, usage: TurnUsage | undefined): string | null {
  if (!usage) return null;
  const tokens = usage.inputTokens + usage.outputTokens;
  if (limits.maxTokens !== null && tokens > limits.maxTokens)
    return `its agent reported ${tokens} tokens, past its budget of ${limits.maxTokens}`;
  const cost = usage.cost;
  if (limits.maxCost !== null && cost !== undefined && cost > limits.maxCost) {
    const currency = usage.currency ?? 'USD';
    return `its agent reported a cost of ${cost} ${currency}, past its budget of ${limits.maxCost}`;
  }
  return null;
}

export class TaskBudget {
  private readonly controller = new AbortController();
  private overrun: string | null = null;

  constructor(private readonly limits: BudgetLimits) {}

  static of(task: Pick<Task, 'maxCost' | 'maxTokens'>): TaskBudget {
    return new TaskBudget({ maxCost: task.maxCost ?? null, maxTokens: task.maxTokens ?? null });
  }

  /** Aborted with reason 'budget' once a report passes the budget. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the task passed its budget, or null. */
  get exceeded(): string | null {
    return this.overrun;
  }

  /** The turn's usage so far (mid-turn reports) or in all (at its end). */
  report(usage: TurnUsage | undefined): void {
    if (this.overrun !== null) return;
    this.overrun = budgetOverrun(this.limits, usage);
    if (this.overrun !== null) this.controller.abort('budget');
  }
}
