import type { ColumnType, Generated } from 'kysely';

/** Column types of chatbot_schema. The seed's names stay here, at the edge; queries map them to readable names. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface AppUserTable {
  idappuser: Generated<number>;
  txusername: string;
  txemail: string;
  password: string | null;
  is_active: Generated<boolean>;
  totp_secret: string | null;
  is_2fa_enabled: Generated<boolean>;
  dtcreated: Generated<Date>;
  dtlast_login: Date | null;
  /** Prompts sent, kept by a trigger on message (migration 010) so the admin list sorts by it through an index. */
  nprompts: Generated<number>;
  /** Time step of the last accepted TOTP code (migration 009): that step and earlier ones are refused. */
  totp_last_step: number | string | null;
  txtotp_pending_secret: string | null;
  dttotp_pending_expires: Timestamp | null;
  /** The account's WebAuthn user handle (migration 021), made at its first passkey registration. */
  txwebauthn_user_id: string | null;
}

/** One passkey (WebAuthn credential) of an account (migration 021). */
export interface PasskeyTable {
  idpasskey: Generated<number>;
  idappuser: number;
  /** base64url, as WebAuthn's JSON sends it. */
  txcredential_id: string;
  /** COSE public key, base64url. */
  txpublic_key: string;
  /** The last signature counter seen (bigint: PostgreSQL returns it as a string). */
  ncounter: ColumnType<string | number, number | undefined, number>;
  /** Comma-separated transports the authenticator named (usb, internal, hybrid…). */
  txtransports: Generated<string>;
  txname: string;
  is_backup_eligible: Generated<boolean>;
  is_backed_up: Generated<boolean>;
  dtcreated: Generated<Date>;
  dtlast_used: Timestamp | null;
}

/** An outstanding WebAuthn challenge (migration 021): one per (binding, purpose), taken once. */
export interface WebauthnChallengeTable {
  txbinding: string;
  txpurpose: string;
  txchallenge: string;
  idappuser: number | null;
  dtexpires: Timestamp;
}

export interface RecoveryCodeTable {
  idrecovery_code: Generated<number>;
  idappuser: number;
  txhash: string;
  dtcreated: Generated<Date>;
  dtused: Timestamp | null;
}

export interface RoleTable {
  idrole: number;
  txname: string;
}

export interface UserRoleTable {
  idappuser: number;
  idrole: number;
}

export interface SessionTable {
  idsession: string; // SHA-256 (hex) of the cookie token; the token itself is never stored
  idappuser: number;
  dtcreated: Generated<Date>;
  dtlast_seen: Generated<Date>;
  dtexpires: Timestamp;
  txuser_agent: string | null;
  txip: string | null;
  txsign_in_method: Generated<SignInMethod>;
  is_second_factor_pending: Generated<boolean>;
  /** The last proof of who is behind the session (sign-in or step-up, migration 014); NULL: none recorded. */
  dtlast_proof: Timestamp | null;
}

/** How a session was made: the way in, recorded on the session row. */
export type SignInMethod = 'password' | 'google' | 'passkey';

export interface LoginThrottleTable {
  txkey: string;
  nfailures: number;
  dtwindow_start: Timestamp;
  dtlocked_until: Timestamp | null;
}

/** An account's identity at an OpenID Connect provider (migration 008): (issuer, sub), never the e-mail. */
export interface OauthIdentityTable {
  txissuer: string;
  txsubject: string;
  idappuser: number;
  txemail: string | null;
  dtcreated: Generated<Date>;
  dtlast_used: Timestamp | null;
}

export interface LlmTable {
  idllm: Generated<number>;
  txshortname: string;
  txbase_url: string | null;
  txapi_key_enc: string | null;
  txmodel: string | null;
  is_enabled: Generated<boolean>;
  dtcreated: Generated<Date>;
  /** Migration 013: the last check's result (null: never checked), when, and by what; the last failure. */
  is_healthy: boolean | null;
  dthealth_checked: Timestamp | null;
  txhealth_source: 'test' | 'answer' | null;
  txlast_error: string | null;
  dtlast_error: Timestamp | null;
  is_default: Generated<boolean>;
  /** Migration 020: true when only the members of the groups in llm_group may use it. */
  is_restricted: Generated<boolean>;
  /** Migration 026: the admin's instructions, sent to the model first in every chat; null: none. */
  system_prompt: string | null;
  /** Migration 027: the admin marked it as taking images. */
  vision: Generated<boolean>;
}

/** A file or image sent with a prompt (migration 027): text files as their UTF-8 bytes, images stripped of metadata. */
export interface AttachmentTable {
  idattachment: Generated<number>;
  idmessage: number;
  txname: string;
  txkind: 'text' | 'image';
  txmedia_type: string;
  nbytes: number;
  nchars: number;
  bcontent: Buffer | Uint8Array;
  dtcreated: Generated<Date>;
}

/** A group of users (migration 020): model access, limits, and (managed) membership from the sign-in's groups claim. */
export interface UserGroupTable {
  idgroup: Generated<number>;
  txname: string;
  is_managed: Generated<boolean>;
  nprompts_per_day: number | null;
  ntokens_per_day: number | null;
  ntokens_per_month: number | null;
  dtcreated: Generated<Date>;
}

export interface UserGroupMemberTable {
  idgroup: number;
  idappuser: number;
  dtadded: Generated<Date>;
}

export interface LlmGroupTable {
  idllm: number;
  idgroup: number;
}

/** One user's own limits (migration 020); NULL: not set (their groups' apply). */
export interface UserLimitTable {
  idappuser: number;
  nprompts_per_day: number | null;
  ntokens_per_day: number | null;
  ntokens_per_month: number | null;
}

/** Prompts and tokens per user × day and user × month, reservations included (migration 020). */
export interface UsageCounterTable {
  idappuser: number;
  txperiod: 'day' | 'month';
  dstart: ColumnType<string, string, string>;
  nprompts: Generated<number>;
  ntokens: Generated<number>;
}

export interface ChatTable {
  idchat: Generated<number>;
  idappuser: number;
  idllm: number;
  txtitle: string | null;
  dtcreated: Generated<Date>;
  dtupdated: Generated<Date>;
  /** Migration 029: made by an import (Settings → Import), for the chat list's badge. */
  is_imported: Generated<boolean>;
  /** Migration 026: the owner's instructions for this chat, sent after the model's; null: none. */
  system_prompt: Generated<string | null>;
}

export interface MessageTable {
  idmessage: Generated<number>;
  idchat: number;
  txmessage: string;
  dtcreated: Generated<Date>;
  /** Migration 029: came with an imported chat; not model usage (the counting triggers skip it). */
  is_imported: Generated<boolean>;
}

export type ResponseStatus = 'pending' | 'streaming' | 'complete' | 'stopped' | 'error' | 'interrupted';

export interface ResponseTable {
  idresponse: Generated<number>;
  idchat: number;
  idmessage: number;
  idllm: number;
  txcontent: string | null;
  txmarkdown: string | null;
  tinf_start: Timestamp | null;
  tinf_end: Timestamp | null;
  tfirst_token: Timestamp | null;
  txstatus: Generated<ResponseStatus>;
  txerror: string | null;
  nprompt_tokens: number | null;
  ncompletion_tokens: number | null;
  dtheartbeat: Timestamp | null;
  is_stop_requested: Generated<boolean>;
  /** Instance id of the process generating this answer, which holds an advisory lock on it while it lives (migration 006). */
  idowner: number | null;
  /** TRUE when txcontent is HTML Parley rendered; FALSE for rows adopted from the prototype until re-rendered (migration 007). */
  is_html_ours: Generated<boolean>;
  /** Migration 020: the tokens reserved against the user's limits and the day they count on; NULL: no reservation. */
  nreserved_tokens: number | null;
  dusage_day: ColumnType<string | null, string | null, string | null>;
  /** Migration 029: came with an imported chat; not model usage (the counting triggers skip it). */
  is_imported: Generated<boolean>;
}

/** One admin action (migration 010); the app never deletes these rows. */
export interface AdminAuditTable {
  idaudit: Generated<number>;
  dtcreated: Generated<Date>;
  idactor: number | null;
  txactor: string;
  idtarget: number | null;
  txtarget: string | null;
  txaction: string;
  jsdetails: ColumnType<Record<string, unknown>, string | undefined, string>;
  txip: string | null;
}

/** A one-time password reset link (migration 010): only the SHA-256 of the token is stored. */
export interface PasswordResetTable {
  idtoken: string;
  idappuser: number;
  dtcreated: Generated<Date>;
  dtexpires: Timestamp;
  dtused: Timestamp | null;
}

/** A personal API key (migration 019): only the SHA-256 of the key is stored. */
export interface ApiKeyTable {
  idapikey: Generated<number>;
  idappuser: number;
  txname: string;
  txprefix: string;
  txhash: string;
  dtcreated: Generated<Date>;
  dtexpires: Timestamp | null;
  dtrevoked: Timestamp | null;
}

export type ApiCallStatus = 'running' | 'complete' | 'error' | 'client_gone' | 'interrupted';

/** One /v1/chat/completions call (migration 019): who, which key and model, timing and tokens; never the content. */
export interface ApiCallTable {
  idapicall: Generated<string>;
  idappuser: number;
  idapikey: number | null;
  idllm: number;
  txstatus: Generated<ApiCallStatus>;
  tinf_start: Generated<Date>;
  tfirst_token: Timestamp | null;
  tinf_end: Timestamp | null;
  nprompt_tokens: number | null;
  ncompletion_tokens: number | null;
  is_estimated: Generated<boolean>;
  txerror: string | null;
  /** The tokens reserved against the limits at admission, and the day they count on (migration 024). */
  nreserved_tokens: number | null;
  dusage_day: ColumnType<string | null, string | null, string | null>;
}

export interface Database {
  'chatbot_schema.api_key': ApiKeyTable;
  'chatbot_schema.api_call': ApiCallTable;
  'chatbot_schema.app_user': AppUserTable;
  'chatbot_schema.role': RoleTable;
  'chatbot_schema.user_role': UserRoleTable;
  'chatbot_schema.session': SessionTable;
  'chatbot_schema.login_throttle': LoginThrottleTable;
  'chatbot_schema.oauth_identity': OauthIdentityTable;
  'chatbot_schema.recovery_code': RecoveryCodeTable;
  'chatbot_schema.llm': LlmTable;
  'chatbot_schema.chat': ChatTable;
  'chatbot_schema.message': MessageTable;
  'chatbot_schema.attachment': AttachmentTable;
  'chatbot_schema.response': ResponseTable;
  'chatbot_schema.admin_audit': AdminAuditTable;
  'chatbot_schema.password_reset': PasswordResetTable;
  'chatbot_schema.passkey': PasskeyTable;
  'chatbot_schema.webauthn_challenge': WebauthnChallengeTable;
  'chatbot_schema.user_group': UserGroupTable;
  'chatbot_schema.user_group_member': UserGroupMemberTable;
  'chatbot_schema.llm_group': LlmGroupTable;
  'chatbot_schema.user_limit': UserLimitTable;
  'chatbot_schema.usage_counter': UsageCounterTable;
}
