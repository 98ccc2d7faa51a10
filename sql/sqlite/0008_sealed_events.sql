-- Events whose payload carries personal data (model.profile.*, model.document.created) are stored
-- encrypted with the encryption key; only the event publisher opens them.
ALTER TABLE event_outbox ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
