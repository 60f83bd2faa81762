import { describe, expect, it } from 'vitest';
import { claude } from '../../../src/tasks/agents/claude.ts';
import type { TaskEventBody } from '../../../src/model/task-events.ts';

/** `claude -p --output-format stream-json --verbose` output recorded from Claude Code 2.1.331 against tests/support/fake-model.mjs. */
const WRITE_RUN = [
  '{"type":"system","subtype":"init","cwd":"/home/sandbox/workspace/app","session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","tools":["Task","Bash","CronCreate","CronDelete","CronList","Edit","EnterWorktree","ExitWorktree","ListAgents","Monitor","NotebookEdit","Read","ReportFindings","ScheduleWakeup","SendMessage","Skill","TaskStop","ToolSearch","WebFetch","WebSearch","Workflow","Write"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"bypassPermissions","slash_commands":["deep-research","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring","agents","auto-mode-setup","autocompact","clear","color","compact","config","output-style","context","effort","fast","focus","heapdump","init","mcp","model","__remote-workflow","workflow-launch-exec","reload-plugins","reload-skills","rename","security-review","usage","insights","recap","goal","list-agents","team-onboarding"],"terminal_slash_commands":["doctor","color","focus","reload-plugins"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.331","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":["deep-research","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring"],"plugins":[{"name":"cc-plugin-agents-md","path":"builtin","source":"cc-plugin-agents-md@builtin"},{"name":"cc-plugin-privacy","path":"builtin","source":"cc-plugin-privacy@builtin"},{"name":"cc-plugin-plugin-authoring","path":"builtin","source":"cc-plugin-plugin-authoring@builtin"}],"capabilities":["interrupt_receipt_v1","interrupt_cancel_queued_v1","interrupt_send_now_v1","interrupt_requeue_taken_v1","msg_lifecycle_v1","request_marker_lists_v1","ask_user_question_unanswered_v1","lifecycle_wakeup_source_v1","sdk_mcp_tools_list_changed","sdk_mcp_manifests","mcp_read_resource_v1","mcp_tool_ui_meta_v1","ui_surface_v1","mcp_call_result_not_for_model_v1","mcp_call_soft_error_result_v1","mcp_call_check_permissions_v1","voice_call_talk_line_v1","withdrawn_files_note_v2","withdrawn_tools_v1","ui_pane_widget_v1","reload_plugins_refuse_if_busy_v1","get_usage_detached_v1","silent_resend_files_v1"],"analytics_disabled":true,"product_feedback_disabled":true,"served_by_anthropic":false,"uuid":"29e1e38a-31f7-41bd-90b6-a03e6c40eea0","sandbox_enabled":false,"memory_paths":{"auto":"/home/sandbox/.claude/projects/-tmp-rec-ws/memory/"},"original_cwd":"/home/sandbox/workspace/app","additional_directories":[],"messaging_socket_path":"/home/sandbox/tmp/cc-socks/3675.sock","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","per_turn_effort_active":true,"ultrathink_available":false,"ultrathink_typed_raises":false,"view_mode":"default"}',
  '{"type":"assistant","message":{"id":"msg_1796139835346","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"I will write the file."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"output_tokens":1,"cache_read_input_tokens":7,"cache_creation_input_tokens":3},"context_management":null},"parent_tool_use_id":null,"session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","uuid":"a9bf4397-5ad0-416c-ac62-ab886d6a1cbc","timestamp":"2026-12-01T15:43:55.353Z"}',
  '{"type":"assistant","message":{"id":"msg_1796139835346","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_1796139835346","name":"Write","input":{"file_path":"/home/sandbox/workspace/app/hello.txt","content":"hello from the agent\\n"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"output_tokens":1,"cache_read_input_tokens":7,"cache_creation_input_tokens":3},"context_management":null},"parent_tool_use_id":null,"session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","uuid":"080188b5-9547-43c7-bc84-1e0162b9acc1","timestamp":"2026-12-01T15:43:55.356Z"}',
  '{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_1796139835346","type":"tool_result","content":"File created successfully at: /home/sandbox/workspace/app/hello.txt (file state is current in your context — no need to Read it back)"}]},"parent_tool_use_id":null,"session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","uuid":"6414016c-d9b3-4588-b779-9558771d8541","timestamp":"2026-12-01T15:43:55.470Z","tool_use_result":{"type":"create","filePath":"/home/sandbox/workspace/app/hello.txt","content":"hello from the agent\\n","structuredPatch":[],"originalFile":null,"userModified":false},"tool_result_meta":[{"id":"toolu_1796139835346","permission_decision":{"decision":"accept","source":"config","reason_type":"mode"}}]}',
  '{"type":"assistant","message":{"id":"msg_1796139835549","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"Done: I wrote hello.txt."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"output_tokens":1,"cache_read_input_tokens":7,"cache_creation_input_tokens":3},"context_management":null},"parent_tool_use_id":null,"session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","uuid":"89f584bc-891d-40db-8117-8117045c0ab3","timestamp":"2026-12-01T15:43:55.570Z"}',
  '{"duration_api_ms":116,"stop_reason":"end_turn","session_id":"d96a24dc-f0bb-4fbd-9586-d441c5176fd8","total_cost_usd":0.0016328000000000002,"usage":{"input_tokens":200,"cache_creation_input_tokens":6,"cache_read_input_tokens":14,"output_tokens":40,"output_tokens_details":{"thinking_tokens":0},"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{"claude-opus-5-5":{"inputTokens":200,"outputTokens":40,"cacheReadInputTokens":14,"cacheCreationInputTokens":6,"webSearchRequests":0,"costUSD":0.0016328000000000002,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"cacheCreationEphemeral5mInputTokens":0,"cacheCreationEphemeral1hInputTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":false,"num_turns":2,"subtype":"success","api_error_status":null,"result":"Done: I wrote hello.txt.","ttft_ms":264,"type":"result","duration_ms":492,"uuid":"f5c33c34-dd21-4825-b8e2-ccf881563814","ttft_stream_ms":262,"time_to_request_ms":223,"first_content_frame_ms":263,"queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{"claude-opus-5-5":{"inputTokens":200,"outputTokens":40,"cacheReadInputTokens":14,"cacheCreationInputTokens":6,"webSearchRequests":0,"costUSD":0.0016328000000000002,"contextWindow":1000000,"maxOutputTokens":128000,"thinkingTokens":0,"cacheCreationEphemeral5mInputTokens":0,"cacheCreationEphemeral1hInputTokens":0,"canonicalModel":"claude-opus-5-5","provider":"firstParty","costBasis":"list"}}}',
];

/** The provider answering 401: Claude Code's own message, then a result line flagged is_error. */
const REJECTED_RUN = [
  '{"type":"system","subtype":"init","cwd":"/home/sandbox/workspace/app","session_id":"5534d263-b7e3-4fc2-b687-66ececbf1946","tools":["Task","Bash","CronCreate","CronDelete","CronList","Edit","EnterWorktree","ExitWorktree","ListAgents","Monitor","NotebookEdit","Read","ReportFindings","ScheduleWakeup","SendMessage","Skill","TaskStop","ToolSearch","WebFetch","WebSearch","Workflow","Write"],"mcp_servers":[],"model":"claude-opus-5-5","permissionMode":"bypassPermissions","slash_commands":["deep-research","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring","agents","auto-mode-setup","autocompact","clear","color","compact","config","output-style","context","effort","fast","focus","heapdump","init","mcp","model","__remote-workflow","workflow-launch-exec","reload-plugins","reload-skills","rename","security-review","usage","insights","recap","goal","list-agents","team-onboarding"],"terminal_slash_commands":["doctor","color","focus","reload-plugins"],"apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.1.331","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":["deep-research","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring"],"plugins":[{"name":"cc-plugin-agents-md","path":"builtin","source":"cc-plugin-agents-md@builtin"},{"name":"cc-plugin-privacy","path":"builtin","source":"cc-plugin-privacy@builtin"},{"name":"cc-plugin-plugin-authoring","path":"builtin","source":"cc-plugin-plugin-authoring@builtin"}],"capabilities":["interrupt_receipt_v1","interrupt_cancel_queued_v1","interrupt_send_now_v1","interrupt_requeue_taken_v1","msg_lifecycle_v1","request_marker_lists_v1","ask_user_question_unanswered_v1","lifecycle_wakeup_source_v1","sdk_mcp_tools_list_changed","sdk_mcp_manifests","mcp_read_resource_v1","mcp_tool_ui_meta_v1","ui_surface_v1","mcp_call_result_not_for_model_v1","mcp_call_soft_error_result_v1","mcp_call_check_permissions_v1","voice_call_talk_line_v1","withdrawn_files_note_v2","withdrawn_tools_v1","ui_pane_widget_v1","reload_plugins_refuse_if_busy_v1","get_usage_detached_v1","silent_resend_files_v1"],"analytics_disabled":true,"product_feedback_disabled":true,"served_by_anthropic":false,"uuid":"9e45cb56-c057-4c8a-bac0-eb6881843161","sandbox_enabled":false,"memory_paths":{"auto":"/home/sandbox/.claude/projects/-tmp-rec-ws/memory/"},"original_cwd":"/home/sandbox/workspace/app","additional_directories":[],"messaging_socket_path":"/home/sandbox/tmp/cc-socks/3731.sock","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","per_turn_effort_active":true,"ultrathink_available":false,"ultrathink_typed_raises":false,"view_mode":"default"}',
  '{"type":"assistant","message":{"diagnostics":null,"id":"fba2b79f-6df0-4128-932e-73aead8c51ae","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"Invalid API key · Fix external API key"}],"context_management":null},"parent_tool_use_id":null,"session_id":"5534d263-b7e3-4fc2-b687-66ececbf1946","uuid":"3d2dbb13-827d-4625-b02d-2f407a4d116d","timestamp":"2026-12-01T15:43:56.435Z","error":"authentication_failed","is_api_error_message":true,"api_error_status":401,"api_error_type":"authentication_error"}',
  '{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"5534d263-b7e3-4fc2-b687-66ececbf1946","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":401,"api_error_type":"authentication_error","result":"Invalid API key · Fix external API key","type":"result","duration_ms":272,"uuid":"8b681391-d9e3-494c-a3d4-80a877254d6e","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}',
];

const FILE = '/home/sandbox/workspace/app/hello.txt';

function run(lines: string[]) {
  const n = claude.normaliser();
  const events: TaskEventBody[] = lines.flatMap((l) => n.line(l));
  return { n, events };
}

describe('the Claude Code normaliser', () => {
  it('turns a run that writes a file into message, Write started/completed with the path, the final message and the result\'s usage and cost', () => {
    const { n, events } = run(WRITE_RUN);
    expect(events).toEqual([
      { type: 'message', role: 'assistant', text: 'I will write the file.' },
      { type: 'tool', name: 'Write', status: 'started', path: FILE },
      { type: 'tool', name: 'Write', status: 'completed', path: FILE },
      { type: 'message', role: 'assistant', text: 'Done: I wrote hello.txt.' },
      { type: 'usage', input: 200, output: 40, cache_read: 14, cache_write: 6, cost: 0.0016328000000000002 },
    ]);
    expect(n.finalMessage).toBe('Done: I wrote hello.txt.');
    expect(n.usage).toEqual({ input: 200, output: 40, cache_read: 14, cache_write: 6, cost: 0.001633 });
    expect(n.finished).toBe(true);
    expect(n.error).toBeNull();
  });

  it('takes the result of a run flagged is_error as the error, though its subtype says success', () => {
    const { n } = run(REJECTED_RUN);
    expect(n.finished).toBe(true);
    expect(n.error).toBe('Invalid API key · Fix external API key');
  });

  it('is not finished without a result line, and names a failed result by its subtype when it has no text', () => {
    expect(run(WRITE_RUN.slice(0, -1)).n.finished).toBe(false);
    expect(run(['{"type":"result","subtype":"error_max_turns","is_error":false}']).n.error).toBe('the agent stopped: error_max_turns');
  });

  it('marks a tool result flagged is_error as an error of the tool it answers, and one it cannot match as unknown', () => {
    const { events } = run([
      '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"false"}}]}}',
      '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","is_error":true},{"type":"tool_result","tool_use_id":"t9"}]}}',
    ]);
    expect(events).toEqual([
      { type: 'tool', name: 'Bash', status: 'started' },
      { type: 'tool', name: 'Bash', status: 'error' },
      { type: 'tool', name: 'unknown', status: 'completed' },
    ]);
  });

  it('ignores what is not one of its JSON objects, and blank text blocks', () => {
    const { events } = run(['not json', '[]', '{"type":"assistant"', '{"type":"assistant","message":{"content":[{"type":"text","text":" "},{"type":"thinking","thinking":"x"}]}}']);
    expect(events).toEqual([]);
  });
});

describe('the Claude Code command line', () => {
  it('runs claude -p with stream-json, skipped permissions, the model when given and the prompt after --; no nonessential traffic unless the env says otherwise', () => {
    const r = { prompt: '-x', model: 'opus', taskId: 'T1', env: { ANTHROPIC_API_KEY: 'k' } };
    expect(claude.command(r)).toEqual({
      cmd: ['claude', '-p', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions', '--model', 'opus', '--', '-x'],
      env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', ANTHROPIC_API_KEY: 'k' },
    });
    expect(claude.command({ ...r, model: null, env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '0' } }).env).toEqual({ CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '0' });
    expect(claude.envProblem({ ANYTHING: 'x' })).toBeUndefined();
  });
});
