//! Rows made through the store traits themselves (for tests that use kiln as a library): the
//! first user, a template whose version imported, workspaces with their first build.

use kiln::model::{JobStatus, Time, Transition, new_id};
use kiln::store::{
    BuildCompletion, ImportOutcome, LogBatch, NewBuild, NewFile, NewLog, NewTemplate,
    NewTemplateVersion, NewUser, NewWorkspace, Store,
};

/// The rows every case needs: the owner, a template whose version imported, and its ids.
pub struct World {
    pub user: String,
    pub org: String,
    pub template: String,
    pub version: String,
    pub file: String,
}

pub fn user(id: &str, name: &str) -> NewUser {
    NewUser {
        id: id.into(),
        email: format!("{name}@example.com"),
        username: name.into(),
        name: String::new(),
        hashed_password: String::new(),
        login_type: "password".into(),
        roles: vec![],
    }
}

/// The owner and a template `t` whose version imported `manifest` (kiln.json as JSON text).
pub fn world(s: &dyn Store, manifest: &str) -> World {
    let (uid, org) = (new_id(), new_id());
    s.create_first_user(&user(&uid, "owner"), &org).unwrap();
    let (file, _) = s
        .insert_file(&NewFile {
            id: &new_id(),
            hash: "h",
            mimetype: "application/x-tar",
            data: &super::tar_of(&[("kiln.json", manifest)]),
            created_by: &uid,
        })
        .unwrap();
    let (version, job) = (new_id(), new_id());
    s.create_template_version(&NewTemplateVersion {
        provisioner: "echo",
        id: &version,
        job_id: &job,
        template_id: None,
        organization_id: &org,
        name: "v1",
        message: "",
        file_id: &file,
        created_by: &uid,
        tags: Default::default(),
    })
    .unwrap();
    let taken = s
        .take_next_job("importer")
        .unwrap()
        .expect("the import job");
    assert_eq!(taken.id, job);
    let valid = ImportOutcome::Valid {
        manifest: manifest.into(),
        readme: String::new(),
    };
    assert!(
        s.complete_import(&job, "importer", &valid, &LogBatch::default())
            .unwrap()
    );
    let template = new_id();
    s.create_template(&NewTemplate {
        id: &template,
        organization_id: &org,
        name: "t",
        display_name: "",
        description: "",
        icon: "",
        version_id: &version,
        default_ttl_ms: 0,
        allow_user_cancel_workspace_jobs: true,
        created_by: &uid,
    })
    .unwrap();
    World {
        user: uid,
        org,
        template,
        version,
        file,
    }
}

impl World {
    pub fn build<'a>(
        &'a self,
        id: &'a str,
        job: &'a str,
        ws: &'a str,
        previous: Option<i64>,
    ) -> NewBuild<'a> {
        NewBuild {
            id,
            job_id: job,
            workspace_id: ws,
            organization_id: &self.org,
            template_version_id: &self.version,
            file_id: &self.file,
            transition: Transition::Start,
            initiator_id: &self.user,
            reason: "initiator",
            orphan: false,
            state: None,
            parameters: &[],
            log_level: "info",
            previous_number: previous,
            on_success: None,
        }
    }

    /// A workspace with its first build queued; returns (workspace id, build id, job id).
    pub fn workspace(&self, s: &dyn Store, name: &str) -> (String, String, String) {
        let (ws, build, job) = (new_id(), new_id(), new_id());
        s.create_workspace(
            &NewWorkspace {
                id: &ws,
                organization_id: &self.org,
                owner_id: &self.user,
                template_id: &self.template,
                name,
                ttl_ms: None,
                autostart_schedule: None,
                automatic_updates: "never",
            },
            &self.build(&build, &job, &ws, None),
        )
        .unwrap();
        (ws, build, job)
    }
}

pub fn succeed(s: &dyn Store, job: &str, worker: &str) -> JobStatus {
    s.complete_build(
        job,
        worker,
        &BuildCompletion::default(),
        &LogBatch::default(),
    )
    .unwrap()
    .expect("the worker held the job")
}

pub fn lines(texts: &[&str]) -> LogBatch {
    LogBatch {
        lines: texts
            .iter()
            .map(|t| NewLog {
                created_at: Time::now(),
                source: "provisioner",
                level: "info".into(),
                stage: "Starting workspace".into(),
                output: t.to_string(),
            })
            .collect(),
    }
}
