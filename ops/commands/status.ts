/** `status`: Swarm's and Consul's view of every service, and where they disagree. */
import type { Command } from "commander";
import { nodePlacement } from "../plan/nodes.ts";
import { readAutoscaleStatus } from "./autoscale.ts";
import { formatNodeTable } from "../render/node_table.ts";
import { formatStatusTable } from "../render/status_table.ts";
import type { CommandContext, CommandRunner } from "../context.ts";
import { describeMcpEndpoint, frontDoorAuth, readSnapshot, statsUrl } from "./_state.ts";
import { AUTH_LABEL } from "../render/stack.ts";

/** Runs `status`. */
export async function statusCommand(context: CommandContext): Promise<void> {
  const info = await context.docker.info();
  const inSwarm = info.swarmState === "active";
  const snapshot = await readSnapshot(context);
  const nodes = inSwarm ? nodePlacement(await context.docker.nodes(), snapshot.swarm) : [];
  const deployed = snapshot.swarm.length > 0;
  const agreed = deployed && snapshot.statuses.every((status) => status.converged);
  const names = context.services.map((service) => service.name)
    .filter((name) => snapshot.swarm.some((service) => service.name === name));
  // The autoscaler's view needs Consul; without it, status still tells the rest.
  const autoscale = deployed && snapshot.consulReachable
    ? await readAutoscaleStatus(context).catch((error) => ({
      rows: [],
      note: `cannot read the autoscaler's status: ${(error as Error).message}`,
    }))
    : { rows: [], note: null };
  // `deploy --no-auth` marks the routers' service; anything else serves MCP with credentials.
  const router = snapshot.swarm.find((service) => service.name === "mcp-router");
  const noAuth = router?.labels?.[AUTH_LABEL] === "none";
  const auth = frontDoorAuth(context, noAuth);
  const text = deployed
    ? [
      formatStatusTable(snapshot.statuses) +
      (snapshot.consulReachable ? "" : `\n! Consul does not answer at ${context.config.consulUrl}`),
      "",
      formatNodeTable(nodes, names),
      "",
      ...autoscale.rows.map((row) =>
        `autoscale ${row.service}: ${row.replicas ?? "-"} -> ${row.desired ?? "-"} (${
          row.paused ? "paused" : row.state
        }; ${row.policy}; ${row.why})`
      ),
      ...(autoscale.note ? [`! ${autoscale.note}`] : []),
      describeMcpEndpoint(context, noAuth),
      `HAProxy stats: ${statsUrl(context)} (user:password in "${auth.statsAuthFile}")`,
      `Prometheus: ${context.config.prometheusUrl}/`,
    ].join("\n")
    : `stack "${context.config.stack}" is not deployed`;
  context.result(
    {
      stack: context.config.stack,
      deployed,
      consulReachable: snapshot.consulReachable,
      agreed,
      services: snapshot.statuses,
      nodes,
      autoscale: autoscale.rows,
      auth: deployed ? auth : null,
      prometheus: context.config.prometheusUrl,
    },
    text,
  );
}

/** Registers `status`. */
export function registerStatus(program: Command, run: CommandRunner): void {
  program.command("status")
    .description("show each service as Swarm and Consul see it, flagging disagreement")
    .action(() => run((context) => statusCommand(context)));
}
