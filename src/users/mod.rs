//! End users: the people of a tenant that its integration calls and widget tokens act for, each known by
//! the tenant's own `external_id` and made on first sight. Their conversations belong to them.

pub mod store;
