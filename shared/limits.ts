/** Protocol-level limits that every broker enforces (rule P5). Server options may only lower them. */
export const MAX_NAME_BYTES = 512;
export const MAX_OWNER_BYTES = 256;
export const MAX_META_BYTES = 1024;
export const MAX_SECRET_LENGTH = 128;
export const MAX_SESSION_ID_LENGTH = 64;
